// The SMTP floor (bench/callgrind --floor; never part of the tests): the OpenSSL work a STARTTLS
// proxy cannot avoid per transaction, and nothing else. In one process, over in-memory BIO pairs:
//   front: a TLS 1.3 client (the mail client's role: X25519, no tickets asked for, like loadgen)
//          against the proxy-role server (ECDSA P-256, the "modern" profile's suites and groups,
//          --tickets session tickets, no session cache) — one full handshake;
//   back:  the proxy-role client (TLS 1.0 only, SECLEVEL 0, no verification: the "legacy"
//          profile) against a TLS 1.0 server (the legacy host's role, session tickets on),
//          resuming the session of the first, full, back handshake — one abbreviated handshake.
// Only the proxy-role calls (SSL_new, SSL_do_handshake, SSL_free on the proxy's two SSLs) run
// inside functions named proxy_role_*; callgrind counts only them:
//   valgrind --tool=callgrind --collect-atstart=no --toggle-collect='proxy_role_*'
//            floor --count 100 --warmup 5 --tickets 1
// Instructions per iteration = total ÷ count. Keys and certificates are made at start.
// The levers bench/callgrind --levers compares, each alone against the plain floor:
//   --front-only            the TLS 1.3 handshake alone (the handshake benchmark's unit)
//   --tickets N             TLS 1.3 session tickets per full handshake (default 1)
//   --prefetch              every algorithm the handshakes use fetched once and held
//   --release-buffers       SSL_MODE_RELEASE_BUFFERS on both proxy contexts
//   --groups LIST           the front's groups (default the "modern" profile's)
//   --allocator mimalloc|jemalloc   OpenSSL's allocations through CRYPTO_set_mem_functions
//                           (built with -DFLOOR_MIMALLOC / -DFLOOR_JEMALLOC and linked with
//                           Debian's libmimalloc / libjemalloc, which replace malloc for the
//                           whole process anyway)
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>
#ifdef FLOOR_MIMALLOC
#include <mimalloc.h>
#endif
#ifdef FLOOR_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

namespace {

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "floor: %s\n", what);
  ERR_print_errors_fp(stderr);
  std::exit(2);
}

struct identity {
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
};

identity make_identity(const char* cn) {
  identity id;
  id.key = EVP_EC_gen("P-256");
  id.cert = X509_new();
  if (!id.key || !id.cert) die("key");
  X509_set_version(id.cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(id.cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(id.cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(id.cert), 86400);
  X509_NAME* name = X509_get_subject_name(id.cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                             -1, -1, 0);
  X509_set_issuer_name(id.cert, name);
  X509_set_pubkey(id.cert, id.key);
  if (X509_sign(id.cert, id.key, EVP_sha256()) == 0) die("sign");
  return id;
}

void use(SSL_CTX* ctx, const identity& id) {
  if (SSL_CTX_use_certificate(ctx, id.cert) != 1 || SSL_CTX_use_PrivateKey(ctx, id.key) != 1)
    die("certificate");
}

// ---- the proxy's side: the only code callgrind counts ----------------------------------------

extern "C" __attribute__((noinline)) SSL* proxy_role_new(SSL_CTX* ctx) {
  return SSL_new(ctx);
}

extern "C" __attribute__((noinline)) int proxy_role_handshake(SSL* ssl) {
  return SSL_do_handshake(ssl);
}

// Marked shut down (as after a close_notify exchange) so that SSL_free leaves the session
// resumable: OpenSSL marks the session of an SSL freed mid-connection not resumable.
extern "C" __attribute__((noinline)) void proxy_role_free(SSL* ssl) {
  SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  SSL_free(ssl);
}

// ---- driving a pair ----------------------------------------------------------------------------

// Steps both ends until both are done (bounded); `counted` routes the proxy's steps through
// proxy_role_handshake.
bool handshake(SSL* proxy, SSL* peer, bool counted) {
  bool proxy_done = false, peer_done = false;
  for (int step = 0; step < 64 && !(proxy_done && peer_done); ++step) {
    if (!peer_done) {
      const int rc = SSL_do_handshake(peer);
      if (rc == 1)
        peer_done = true;
      else if (SSL_get_error(peer, rc) != SSL_ERROR_WANT_READ)
        return false;
    }
    if (!proxy_done) {
      const int rc = counted ? proxy_role_handshake(proxy) : SSL_do_handshake(proxy);
      if (rc == 1)
        proxy_done = true;
      else if (SSL_get_error(proxy, rc) != SSL_ERROR_WANT_READ)
        return false;
    }
  }
  return proxy_done && peer_done;
}

void pair(SSL* a, SSL* b) {
  BIO *x = nullptr, *y = nullptr;
  if (BIO_new_bio_pair(&x, 0, &y, 0) != 1) die("BIO_new_bio_pair");
  SSL_set_bio(a, x, x);
  SSL_set_bio(b, y, y);
}

// The peer's tickets (TLS 1.3 NewSessionTicket after the handshake) are read by the peer, as a
// mail client's next read would; the proxy has nothing more to do for them.
void drain(SSL* peer) {
  char buf[64];
  SSL_read(peer, buf, sizeof buf);
  ERR_clear_error();
}

// Held for the process: algorithms fetched once (openssl issues #20286, #21005 advise this
// against OpenSSL 3.0's per-use fetches).
std::vector<void*> prefetched;

void prefetch() {
  for (const char* md : {"SHA256", "SHA384", "SHA1", "MD5-SHA1", "MD5"})
    prefetched.push_back(EVP_MD_fetch(nullptr, md, nullptr));
  for (const char* kdf : {"HKDF", "TLS13-KDF", "TLS1-PRF"})
    prefetched.push_back(EVP_KDF_fetch(nullptr, kdf, nullptr));
  prefetched.push_back(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
  for (const char* km : {"X25519", "EC"})
    prefetched.push_back(EVP_KEYMGMT_fetch(nullptr, km, nullptr));
  for (const char* kx : {"X25519", "ECDH"})
    prefetched.push_back(EVP_KEYEXCH_fetch(nullptr, kx, nullptr));
  prefetched.push_back(EVP_SIGNATURE_fetch(nullptr, "ECDSA", nullptr));
  for (const char* c : {"AES-128-GCM", "AES-256-GCM", "AES-256-CBC", "AES-128-CBC"})
    prefetched.push_back(EVP_CIPHER_fetch(nullptr, c, nullptr));
  for (void* p : prefetched)
    if (p == nullptr) die("prefetch");
}

#if defined(FLOOR_MIMALLOC)
void* lever_malloc(size_t n, const char*, int) {
  return mi_malloc(n);
}
void* lever_realloc(void* p, size_t n, const char*, int) {
  return mi_realloc(p, n);
}
void lever_free(void* p, const char*, int) {
  mi_free(p);
}
#elif defined(FLOOR_JEMALLOC)
void* lever_malloc(size_t n, const char*, int) {
  return malloc(n);
}
void* lever_realloc(void* p, size_t n, const char*, int) {
  return realloc(p, n);
}
void lever_free(void* p, const char*, int) {
  free(p);
}
#endif

}  // namespace

int main(int argc, char** argv) {
  int count = 100, warmup = 5, tickets = 1;
  bool front_only = false, release_buffers = false;
  std::string groups = "X25519:P-256:P-384", allocator;
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (!std::strcmp(argv[i], "--count") && has_value)
      count = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--warmup") && has_value)
      warmup = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--tickets") && has_value)
      tickets = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--groups") && has_value)
      groups = argv[++i];
    else if (!std::strcmp(argv[i], "--allocator") && has_value)
      allocator = argv[++i];
    else if (!std::strcmp(argv[i], "--front-only"))
      front_only = true;
    else if (!std::strcmp(argv[i], "--release-buffers"))
      release_buffers = true;
    else if (!std::strcmp(argv[i], "--prefetch"))
      prefetch();
    else
      die("usage: floor [--count N] [--warmup N] [--tickets N] [--front-only] [--prefetch] "
          "[--release-buffers] [--groups LIST] [--allocator mimalloc|jemalloc]");
  }
  if (!allocator.empty()) {
#if defined(FLOOR_MIMALLOC) || defined(FLOOR_JEMALLOC)
    if (CRYPTO_set_mem_functions(lever_malloc, lever_realloc, lever_free) != 1)
      die("CRYPTO_set_mem_functions (called too late?)");
#else
    die("--allocator: this floor binary was built without one");
#endif
  }
  const identity front_id = make_identity("floor.test"), back_id = make_identity("legacy.test");

  // The proxy's front context: the "modern" profile.
  SSL_CTX* front = SSL_CTX_new(TLS_server_method());
  SSL_CTX_set_min_proto_version(front, TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(front, TLS1_3_VERSION);
  SSL_CTX_set_ciphersuites(front,
                           "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
                           "TLS_CHACHA20_POLY1305_SHA256");
  if (SSL_CTX_set1_groups_list(front, groups.c_str()) != 1) die("groups");
  if (release_buffers) SSL_CTX_set_mode(front, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_session_cache_mode(front, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(front, static_cast<size_t>(tickets));
  if (tickets == 0) SSL_CTX_set_options(front, SSL_OP_NO_TICKET);
  use(front, front_id);

  // The mail client (loadgen's client_ctx).
  SSL_CTX* client = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(client, TLS1_2_VERSION);
  SSL_CTX_set_options(client, SSL_OP_NO_TICKET);
  SSL_CTX_set_session_cache_mode(client, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_verify(client, SSL_VERIFY_NONE, nullptr);

  // The proxy's back context: the "legacy" profile.
  SSL_CTX* back = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_security_level(back, 0);
  SSL_CTX_set_min_proto_version(back, TLS1_VERSION);
  SSL_CTX_set_max_proto_version(back, TLS1_2_VERSION);
  SSL_CTX_set_cipher_list(back, "DEFAULT:@SECLEVEL=0");
  SSL_CTX_set_verify(back, SSL_VERIFY_NONE, nullptr);
  if (release_buffers) SSL_CTX_set_mode(back, SSL_MODE_RELEASE_BUFFERS);

  // The legacy host: TLS 1.0 only, tickets on (Postfix's default).
  SSL_CTX* legacy = SSL_CTX_new(TLS_server_method());
  SSL_CTX_set_security_level(legacy, 0);
  SSL_CTX_set_min_proto_version(legacy, TLS1_VERSION);
  SSL_CTX_set_max_proto_version(legacy, TLS1_VERSION);
  SSL_CTX_set_cipher_list(legacy, "DEFAULT:@SECLEVEL=0");
  use(legacy, back_id);

  SSL_SESSION* session = nullptr;
  int resumed = 0;
  for (int i = 0; i < warmup + count; ++i) {
    const bool counted = i >= warmup;
    SSL* proxy_front = counted ? proxy_role_new(front) : SSL_new(front);
    SSL* mail_client = SSL_new(client);
    pair(proxy_front, mail_client);
    SSL_set_accept_state(proxy_front);
    SSL_set_connect_state(mail_client);
    if (!handshake(proxy_front, mail_client, counted)) die("front handshake");
    drain(mail_client);
    if (front_only) {
      if (counted) {
        proxy_role_free(proxy_front);
        ++resumed;
      } else {
        SSL_set_shutdown(proxy_front, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        SSL_free(proxy_front);
      }
      SSL_free(mail_client);
      continue;
    }

    SSL* proxy_back = counted ? proxy_role_new(back) : SSL_new(back);
    SSL* host = SSL_new(legacy);
    pair(proxy_back, host);
    SSL_set_connect_state(proxy_back);
    SSL_set_accept_state(host);
    if (session) SSL_set_session(proxy_back, session);
    if (!handshake(proxy_back, host, counted)) die("back handshake");
    if (std::strcmp(SSL_get_version(proxy_back), "TLSv1") != 0) die("back leg not TLS 1.0");
    if (SSL_session_reused(proxy_back)) {
      if (counted) ++resumed;
    } else if (session == nullptr) {
      session = SSL_get1_session(proxy_back);
    }
    if (counted) {
      proxy_role_free(proxy_front);
      proxy_role_free(proxy_back);
    } else {
      SSL_set_shutdown(proxy_front, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
      SSL_set_shutdown(proxy_back, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
      SSL_free(proxy_front);
      SSL_free(proxy_back);
    }
    SSL_free(mail_client);
    SSL_free(host);
  }
  if (resumed != count) die("a counted back handshake was not resumed");
  std::printf("RESULT iterations=%d resumed=%d tickets=%d front_only=%d\n", count,
              front_only ? 0 : resumed, tickets, front_only ? 1 : 0);
  return 0;
}
