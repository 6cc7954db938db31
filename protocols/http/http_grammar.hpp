// The HTTP/1.1 request grammar the HTTPS machine tokenises by (the shield), written from RFC 9110
// and RFC 9112 and independent of Beast: where a request head ends (CRLF only, RFC 9112 §2.2; an
// exact byte limit however the head is split), the request line and field lines (tokens,
// field-vchar, no obs-fold), the explicit set of methods the proxy relays (case-sensitive, as IIS
// is), which field names IIS folds onto others (`_` read as `-`), and a chunked-body decoder (RFC
// 9112 §7.1) that validates every size line, chunk extension and CRLF and re-serialises the
// framing, so the backend receives exactly the framing the proxy understood. Anything outside the
// grammar is a refusal with a reason that names the rule; nothing here throws or asserts on peer
// input.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tlsbridge::protocols::http {

// RFC 9110 §5.6.2 tchar.
bool is_tchar(char c);

// Where a request head ends in `buf`, which starts at the request line. `scanned` is how far an
// earlier call looked (resumed there, so a head arriving a byte at a time is scanned once).
struct head_scan {
  enum class result { need_more, complete, bare_line_ending, too_large };
  result what = result::need_more;
  std::size_t length = 0;   // complete: the head with its final CRLF CRLF
  std::size_t scanned = 0;  // need_more: resume from here
};
// A head is complete at its first CRLF CRLF; a CR not followed by LF or an LF not preceded by CR
// anywhere before that is bare_line_ending (RFC 9112 §2.2: the proxy refuses what a tolerant
// backend would read as a line end); a head longer than `limit` bytes (its final CRLF CRLF
// included) is too_large as soon as that is certain, however the bytes were split.
head_scan scan_head(std::string_view buf, std::size_t scanned, std::size_t limit);

struct grammar_refusal {
  unsigned status = 400;
  std::string reason;
};

// Checks a complete request head (as found by scan_head) against RFC 9112 §3 and §5: request-line
// = method SP request-target SP HTTP-version CRLF with exactly one SP each, a method the proxy
// relays (else 501), a target of visible ASCII, HTTP/1.0 or HTTP/1.1; field-line = field-name ":"
// OWS field-value OWS with a token name (no whitespace before the colon, RFC 9112 §5.1), a value
// of field-vchar, SP and HTAB only (no NUL or other CTL, RFC 9110 §5.5), no obs-fold (§5.2).
std::optional<grammar_refusal> check_head_grammar(std::string_view raw_head);

// The methods relayed, compared case-sensitively (RFC 9110 §9.1; IIS treats `get` as an unknown
// verb, so a proxy that read it as GET would disagree with it): RFC 9110's GET HEAD POST PUT
// DELETE OPTIONS, RFC 5789's PATCH, Outlook Anywhere's RPC_IN_DATA RPC_OUT_DATA (MS-RPCH §2.1.2.1),
// and the WebDAV verbs of RFC 4918 and RFC 5323 (PROPFIND PROPPATCH MKCOL COPY MOVE LOCK UNLOCK
// SEARCH). Not relayed: CONNECT (the proxy is no forward proxy), TRACE (reflects credentials),
// anything else.
bool method_relayed(std::string_view method);
// MS-RPCH channel methods: only on /rpc/ paths.
bool rpc_method(std::string_view method);

// A field name IIS would fold onto another: it maps '_' to '-' for server variables, so
// `X_Forwarded_For` reaches an application as X-Forwarded-For. Such fields are stripped (nginx's
// `underscores_in_headers off`).
bool folded_field_name(std::string_view name);

// The chunked body of a request (RFC 9112 §7.1), decoded strictly and re-serialised:
//   chunk      = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//   chunk-size = 1*HEXDIG                                  (at most 16 significant digits)
//   chunk-ext  = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//   chunk-ext-val = token / quoted-string                  (RFC 9112 §7.1.1)
//   last-chunk = 1*("0") [ chunk-ext ] CRLF, then trailer field lines and CRLF
// The output carries the size digits without leading zeros, no extensions (a recipient ignores
// them, §7.1.1) and no trailer fields (§7.1.2 lets them be discarded): the backend sees exactly
// the chunk boundaries the proxy validated, whatever its own reading of extensions or line ends.
// Bare CR or LF in a size line, data not followed by CRLF, a control character or a stray byte
// in an extension: an error, with a reason naming the rule.
class chunked_decoder {
 public:
  explicit chunked_decoder(std::size_t line_limit) : line_limit_(line_limit) {}

  // Consumes bytes of `data`, appending what to forward to `out`; returns how many were consumed.
  // Fewer than offered only on error (`error()` is then set) or at the end of the body (`done()`).
  std::size_t put(std::string_view data, std::string& out);
  bool done() const { return state_ == state::done; }
  const std::string& error() const { return error_; }

 private:
  enum class state { size_line, data, data_cr, data_lf, trailer_line, done, failed };
  bool on_size_line(std::string_view line, std::string& out);
  bool fail(std::string reason);

  std::size_t line_limit_;
  state state_ = state::size_line;
  std::string line_;  // the size or trailer line being read (bounded by line_limit_)
  std::uint64_t remaining_ = 0;
  std::size_t trailer_bytes_ = 0;
  std::string error_;
};

// RFC 9112 §7.1.1 chunk-ext, exactly (the text after the size digits, without the CRLF).
bool valid_chunk_ext(std::string_view ext);

}  // namespace tlsbridge::protocols::http
