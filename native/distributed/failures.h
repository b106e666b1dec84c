// What a failed rendezvous or collective means for the user. c10d, Gloo and NCCL report
// failures in their own words (a gloo::IoException "Connection closed by peer", a c10::Error
// "Socket Timeout", errno 98): these functions keep their first line and say in front of it
// what happened (a rank died, a rank is silent, the port is taken) and what to do, with a
// `code` that tests and callers can match.
#pragma once

#include <napi.h>

#include <chrono>
#include <string>

namespace dna::distributed {

struct Failure {
  // DNA_DISTRIBUTED_PEER_LOST, DNA_DISTRIBUTED_TIMEOUT, DNA_DISTRIBUTED_PORT_IN_USE,
  // DNA_DISTRIBUTED_UNREACHABLE or DNA_DISTRIBUTED_ERROR.
  std::string code;
  std::string message;
};

// Where a rendezvous failed.
enum class JoinStage { HostStore, ConnectStore, JoinGroup };

// The first line of an exception's text, without c10's backtrace or Gloo's "[file:line] " prefix.
std::string essentialMessage(const std::string& raw);

// A collective `where` ("allReduce (rank 1 of 2)") failed with `raw`.
Failure explainCollectiveFailure(const std::string& where, const std::string& raw, std::chrono::milliseconds timeout);

// Joining failed at `stage`; `context` starts the message, naming the operation, the rank and the
// store ("initDistributed (rank 1 of 2, store 127.0.0.1:29500)").
Failure explainJoinFailure(const std::string& context, JoinStage stage, const std::string& raw,
                           std::chrono::milliseconds timeout);

Napi::Error toJsError(Napi::Env env, const Failure& failure);

}  // namespace dna::distributed
