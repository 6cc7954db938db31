// obtain(): one order driven over the blocking HTTPS client — the order machine's requests made,
// its waits slept in short slices (the stop token and the order's deadline checked between them),
// its challenges published and withdrawn through the proxy's responder.
#include "acme/obtain.hpp"

#include <set>
#include <thread>

#include "acme/account_key.hpp"
#include "acme/https_client.hpp"
#include "acme/order_machine.hpp"

namespace tlsbridge::acme {

namespace {

using steady = std::chrono::steady_clock;

order_result failure(std::string step, std::string error) {
  order_result result;
  result.step = std::move(step);
  result.error = std::move(error);
  return result;
}

order_result run(const order_request& request, challenge_responder& responder, std::stop_token stop,
                 std::set<std::string>& published) {
  const auto deadline = steady::now() + request.timeout;
  std::string error;
  auto account = account_key::load(request.account_key_pem, error);
  if (!account) return failure("account", error);
  pkey_ptr cert_key = new_p256_key();
  if (!cert_key) return failure("finalize", "cannot make the certificate key");

  https_settings http;
  http.ca_file = request.ca_file;
  https_client client(http);
  if (!client.ready(error)) return failure("directory", error);

  order_machine machine({request.directory_url, request.email, request.names, {}},
                        std::move(*account), std::move(cert_key));
  order_action action = machine.start();
  // Every step of an order is a handful of actions; this bounds a server that loops forever.
  for (int actions = 0; actions < 2000; ++actions) {
    if (stop.stop_requested())
      return failure("stopped", "stop requested during " + std::string(machine.step()));
    if (steady::now() >= deadline)
      return failure(machine.step(), "the order took longer than " +
                                         std::to_string(request.timeout.count()) + " s");
    switch (action.what) {
      case order_action::kind::request: {
        // Each request gets what is left of the order's time (the client caps it at 30 s).
        http_response response;
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
        if (client.fetch(action.request, response, error, left))
          action = machine.on_response(response);
        else
          action = machine.on_transport_error(error);
        break;
      }
      case order_action::kind::wait: {
        const auto until = std::min(deadline, steady::now() + action.delay);
        while (steady::now() < until && !stop.stop_requested())
          std::this_thread::sleep_for(
              std::min<steady::duration>(std::chrono::milliseconds(100), until - steady::now()));
        action = machine.resume();
        break;
      }
      case order_action::kind::publish:
        responder.publish(action.challenge);
        published.insert(action.challenge.name);
        action = machine.resume();
        break;
      case order_action::kind::withdraw:
        responder.withdraw(action.name);
        published.erase(action.name);
        action = machine.resume();
        break;
      case order_action::kind::done:
      case order_action::kind::failed:
        return std::move(action.result);
    }
  }
  return failure(machine.step(), "the order did not end after 2000 actions");
}

}  // namespace

order_result obtain(const order_request& request, challenge_responder& responder,
                    std::stop_token stop) {
  std::set<std::string> published;
  order_result result;
  try {
    result = run(request, responder, stop, published);
  } catch (const std::exception& e) {
    result = failure("internal", e.what());
  }
  // Whatever ended the order, no challenge certificate stays published.
  for (const auto& name : published) {
    try {
      responder.withdraw(name);
    } catch (...) {
    }
  }
  return result;
}

std::string generate_account_key_pem() {
  auto key = account_key::generate();
  return key ? key->pem() : std::string();
}

}  // namespace tlsbridge::acme
