// Explaining c10d, Gloo and NCCL failures (see failures.h).
#include "distributed/failures.h"

#include <cctype>
#include <initializer_list>

namespace dna::distributed {

namespace {

bool mentions(const std::string& text, std::initializer_list<const char*> needles) {
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* needle : needles) {
    if (lower.find(needle) != std::string::npos) return true;
  }
  return false;
}

// Words c10d and Gloo use when a peer's socket closed or reset: the peer process died.
bool peerLost(const std::string& raw) {
  return mentions(raw, {"connection closed by peer", "connection reset", "broken pipe", "econnreset", "epipe",
                        "read error", "socket closed", "end of file", "connection was likely closed"});
}

bool timedOut(const std::string& raw) { return mentions(raw, {"timed out", "timeout", "time out"}); }

std::string seconds(std::chrono::milliseconds timeout) {
  const double s = static_cast<double>(timeout.count()) / 1000.0;
  std::string text = std::to_string(s);
  text.erase(text.find_last_not_of('0') + 1);
  if (!text.empty() && text.back() == '.') text.pop_back();
  return text + " s";
}

}  // namespace

std::string essentialMessage(const std::string& raw) {
  std::string text = raw;
  const auto backtrace = text.find("\nException raised from");
  if (backtrace != std::string::npos) text.erase(backtrace);
  // Gloo prefixes "[/path/to/file.cc:123] ".
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find("] ");
    if (close != std::string::npos && text.find(':') < close) text.erase(0, close + 2);
  }
  const auto newline = text.find('\n');
  if (newline != std::string::npos) text.erase(newline);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\r')) text.pop_back();
  return text;
}

Failure explainCollectiveFailure(const std::string& where, const std::string& raw, std::chrono::milliseconds timeout) {
  const std::string detail = essentialMessage(raw);
  if (peerLost(raw)) {
    return {"DNA_DISTRIBUTED_PEER_LOST",
            where + ": lost the connection to another rank, which probably died (see its output): " + detail};
  }
  if (timedOut(raw)) {
    return {"DNA_DISTRIBUTED_TIMEOUT",
            where + ": timed out after " + seconds(timeout) +
                " waiting for the other ranks (one is stuck, stopped or gone silent): " + detail};
  }
  return {"DNA_DISTRIBUTED_ERROR", where + ": " + detail};
}

Failure explainJoinFailure(const std::string& context, JoinStage stage, const std::string& raw,
                           std::chrono::milliseconds timeout) {
  const std::string detail = essentialMessage(raw);
  switch (stage) {
    case JoinStage::HostStore:
      if (mentions(raw, {"address already in use", "errno: 98", "eaddrinuse"})) {
        return {"DNA_DISTRIBUTED_PORT_IN_USE",
                context +
                    ": cannot host the rendezvous store: its port is already in use (another run or "
                    "program holds it); choose another MASTER_PORT, or let `dna launch` pick a free one: " +
                    detail};
      }
      return {"DNA_DISTRIBUTED_ERROR", context + ": cannot host the rendezvous store: " + detail};
    case JoinStage::ConnectStore:
      if (timedOut(raw) || mentions(raw, {"connection refused", "connect"})) {
        return {"DNA_DISTRIBUTED_UNREACHABLE",
                context + ": could not reach the rendezvous store within " + seconds(timeout) +
                    " (is rank 0 or the launcher running? are MASTER_ADDR and MASTER_PORT right?): " + detail};
      }
      return {"DNA_DISTRIBUTED_ERROR", context + ": cannot use the rendezvous store: " + detail};
    case JoinStage::JoinGroup:
      if (timedOut(raw)) {
        return {"DNA_DISTRIBUTED_TIMEOUT",
                context + ": timed out after " + seconds(timeout) +
                    " waiting for every rank to join (a rank did not start, or failed before joining): " + detail};
      }
      if (peerLost(raw)) {
        return {"DNA_DISTRIBUTED_PEER_LOST", context + ": another rank left while the group was forming: " + detail};
      }
      return {"DNA_DISTRIBUTED_ERROR", context + ": cannot form the process group: " + detail};
  }
  return {"DNA_DISTRIBUTED_ERROR", context + ": " + detail};
}

Napi::Error toJsError(Napi::Env env, const Failure& failure) {
  Napi::Error error = Napi::Error::New(env, failure.message);
  error.Set("code", Napi::String::New(env, failure.code));
  return error;
}

}  // namespace dna::distributed
