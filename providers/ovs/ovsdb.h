// A small OVSDB client (RFC 7047): JSON-RPC over a unix or tcp stream socket, the datum encodings, and
// transactions built as data.
//
// The client is deliberately synchronous: one request in flight, replies matched by id, the server's own
// "echo" requests answered while waiting. Every read and write has a deadline, every message a size cap, and
// anything the peer sends that is not a JSON-RPC message is an error naming the peer — never a crash.
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/model.h"
#include "base/result.h"
#include "base/socket.h"

namespace vnetplan::ovs {

// "unix:PATH" or "tcp:HOST:PORT" (HOST may be [v6]).
struct Remote {
  bool unix = true;
  std::string path;  // unix
  std::string host;  // tcp
  int port = 0;      // tcp
  std::string str() const;
};
Result<Remote> parseRemote(const std::string& spec);

// Finds message boundaries in the byte stream (OVSDB sends JSON objects back to back, no delimiter).
// Incremental: each byte is looked at once however the stream is split into reads.
class Framer {
 public:
  // Scans `buf` from where the last call stopped. Returns the offset one past the end of the first complete
  // object, 0 if it is not complete yet, or nullopt if the bytes cannot be a JSON-RPC message. After a
  // message is taken out of the buffer, call reset().
  // Brackets must match by kind, and nesting deeper than kMaxDepth is refused (OVSDB's own messages nest
  // fewer than ten levels; deeper input would only exhaust the stack of whatever copies it later).
  std::optional<size_t> scan(const std::string& buf);
  void reset() { *this = Framer(); }
  static constexpr size_t kMaxDepth = 64;

 private:
  size_t pos_ = 0;
  std::string open_;  // the kinds of the open brackets, innermost last
  bool started_ = false, inString_ = false, escaped_ = false;
};

// Text from a peer made safe to print: control characters become '?', and it is cut at `max` bytes.
std::string printable(const std::string& text, size_t max = 400);

class Connection {
 public:
  static Result<std::unique_ptr<Connection>> open(const Remote& remote, std::chrono::milliseconds timeout);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Sends {"method", "params", "id"} and returns the reply's "result"; a JSON-RPC "error" becomes an Error.
  Result<Json> call(const std::string& method, Json params);
  const Remote& remote() const { return remote_; }
  bool broken() const { return broken_; }
  void setTimeout(std::chrono::milliseconds t) { timeout_ = t; }
  std::chrono::milliseconds remoteTimeout() const { return timeout_; }

 private:
  Connection(Remote r, StreamSocket sock, std::chrono::milliseconds timeout)
      : remote_(std::move(r)), sock_(std::move(sock)), timeout_(timeout) {}
  Status sendAll(const std::string& bytes, std::chrono::steady_clock::time_point deadline);
  Result<Json> readMessage(std::chrono::steady_clock::time_point deadline);
  Error peerError(const std::string& what) const;

  Remote remote_;
  StreamSocket sock_;
  std::chrono::milliseconds timeout_;
  std::string buf_;
  Framer framer_;
  uint64_t nextId_ = 1;
  bool broken_ = false;  // after a protocol error the stream position is unknown: refuse further calls
};

// ---- datum encodings (RFC 7047 §5.1)

// ["uuid", "..."] / ["named-uuid", "..."]
Json uuidRef(const std::string& uuid);
Json namedUuid(const std::string& name);
// A set of atoms: a single atom stays bare only when `bareSingle` (OVSDB accepts both).
Json setOf(const std::vector<Json>& atoms);
Json mapOf(const std::map<std::string, std::string>& m);
// Decoding of values read from the server.
std::vector<Json> setAtoms(const Json& datum);                // bare atom or ["set", [...]]
std::map<std::string, Json> mapEntries(const Json& datum);    // ["map", [[k, v], ...]]
std::map<std::string, std::string> stringMap(const Json& datum);
std::optional<std::string> uuidOf(const Json& atom);          // ["uuid", u] -> u
std::optional<int64_t> intOf(const Json& datum);              // integer atom or one-element set
std::optional<std::string> stringOf(const Json& datum);       // string atom or one-element set

// ---- transactions as data

// One operation plus a human label used to map an error back to what caused it.
struct Op {
  Json json;
  std::string label;
  long step = -1;  // the plan step that added it (-1: none)
};

class Txn {
 public:
  explicit Txn(std::string db) : db_(std::move(db)) {}
  // Returns the named-uuid placeholder for the new row (usable as a reference in later operations).
  Json insert(const std::string& table, Json row, const std::string& label);
  void update(const std::string& table, const std::string& uuid, Json row, const std::string& label);
  void mutate(const std::string& table, const std::string& uuid, Json mutations, const std::string& label);
  void mutateWhere(const std::string& table, Json where, Json mutations, const std::string& label);
  void updateWhere(const std::string& table, Json where, Json row, const std::string& label);
  void remove(const std::string& table, const std::string& uuid, const std::string& label);
  // Fails the transaction unless the rows selected by `where` have exactly `rows` in `columns`.
  void wait(const std::string& table, Json where, std::vector<std::string> columns, Json rows,
            const std::string& label);
  void comment(const std::string& text);
  void select(const std::string& table, std::vector<std::string> columns, const std::string& label);
  // Operations added from now on are attributed to plan step `i` (-1: none).
  void setStep(long i) { step_ = i; }
  void abort(const std::string& label);  // test hook: an operation that always fails
  size_t size() const { return waits_.size() + ops_.size(); }
  bool empty() const { return ops_.empty(); }
  // The i-th operation in the order sent: every `wait` first (so a guard sees the rows as observed, before this
  // transaction's own changes), then the changes in the order they were added.
  const Op& at(size_t i) const;
  Json params() const;  // ["Open_vSwitch", op, op, ...]

  // Outcome of a reply: ok, or the first failing operation's label with the server's error and details.
  // `stale` is set when the failure was a wait precondition (someone else changed what was observed).
  struct Outcome {
    bool ok = true;
    bool stale = false;
    long failedStep = -1;  // the step whose operation failed, if any
    std::string message;
    std::vector<Json> results;  // per operation (insert: {"uuid": [...]})
  };
  Outcome interpret(const Json& reply) const;
  // The real uuid assigned to the named row, from a successful reply.
  std::optional<std::string> insertedUuid(const Outcome& o, const std::string& named) const;

 private:
  std::string db_;
  std::vector<Op> waits_, ops_;
  std::map<std::string, size_t> named_;  // named-uuid -> index in ops_
  int counter_ = 0;
  long step_ = -1;
  void add(std::vector<Op>& to, Json json, const std::string& label) { to.push_back({std::move(json), label, step_}); }
};

// Where-clause helpers.
Json whereUuid(const std::string& uuid);
Json whereName(const std::string& name);

}  // namespace vnetplan::ovs
