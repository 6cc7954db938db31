#include "certs/inspect.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "certs/chain_collector.hpp"
#include "certs/tls_context.hpp"

namespace tlsbridge::certs {
namespace {

struct x509_stack_deleter {
  void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};
using x509_stack_ptr = std::unique_ptr<STACK_OF(X509), x509_stack_deleter>;

// Every certificate in one PEM file, in file order; other PEM blocks (keys) are skipped.
void load_pem_certificates(const std::filesystem::path& file, STACK_OF(X509) * out) {
  if (std::filesystem::is_directory(file)) throw inspect_error(file.string() + ": is a directory");
  ERR_clear_error();
  errno = 0;
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_file(file.c_str(), "r"), &BIO_free);
  if (!bio) {
    const int err = errno;
    ERR_clear_error();
    throw inspect_error(file.string() +
                        ": cannot read: " + (err != 0 ? std::strerror(err) : "cannot open"));
  }
  int count = 0;
  for (;;) {
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* data = nullptr;
    long len = 0;
    if (PEM_read_bio(bio.get(), &name, &header, &data, &len) != 1) {
      // The normal end of the file is "no start line"; anything else is a broken PEM block.
      const unsigned long e = ERR_peek_last_error();
      const bool eof = ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
      if (!eof) throw inspect_error(file.string() + ": bad PEM: " + last_openssl_error());
      ERR_clear_error();
      break;
    }
    const std::string type = name;
    const unsigned char* p = data;
    X509* cert = nullptr;
    if (type == PEM_STRING_X509 || type == PEM_STRING_X509_OLD || type == PEM_STRING_X509_TRUSTED) {
      cert = type == PEM_STRING_X509_TRUSTED ? d2i_X509_AUX(nullptr, &p, len)
                                             : d2i_X509(nullptr, &p, len);
    }
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    if (type != PEM_STRING_X509 && type != PEM_STRING_X509_OLD && type != PEM_STRING_X509_TRUSTED)
      continue;
    if (cert == nullptr)
      throw inspect_error(file.string() + ": certificate " + std::to_string(count + 1) +
                          " does not parse: " + last_openssl_error());
    sk_X509_push(out, cert);
    ++count;
  }
  if (count == 0) throw inspect_error(file.string() + ": no PEM certificate in it");
}

}  // namespace

policy::chain_evidence inspect(const inspect_options& options) {
  if (options.files.empty()) throw inspect_error("no certificate file given");
  x509_stack_ptr certs(sk_X509_new_null());
  if (!certs) throw std::runtime_error("out of memory");
  for (const auto& file : options.files) load_pem_certificates(file, certs.get());
  auto store = make_trust_store(options.ca_file);
  X509* leaf = sk_X509_value(certs.get(), 0);
  // collect_chain skips the leaf in the untrusted list, as it does for a client-side peer chain.
  return collect_chain(leaf, certs.get(), verify_settings{store.get(), options.server_name});
}

}  // namespace tlsbridge::certs
