#include "providers/ovs/ovsdb.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vnetplan::ovs {

namespace {

// A reply larger than this is refused (a 10,000-port switch observes in a few MiB).
constexpr size_t kMaxMessage = 256u << 20;

using Clock = std::chrono::steady_clock;

}  // namespace

std::string Remote::str() const { return unix ? "unix:" + path : "tcp:" + host + ":" + std::to_string(port); }

Result<Remote> parseRemote(const std::string& spec) {
  Remote r;
  if (spec.rfind("unix:", 0) == 0) {
    r.path = spec.substr(5);
    if (r.path.empty()) return err("'" + spec + "': unix: needs a socket path");
    if (r.path.size() >= sizeof(sockaddr_un{}.sun_path))
      return err("'" + spec + "': the socket path is longer than " + std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) +
                 " bytes");
    return r;
  }
  if (spec.rfind("tcp:", 0) == 0) {
    std::string rest = spec.substr(4);
    size_t colon = rest.rfind(':');
    if (colon == std::string::npos || colon == 0) return err("'" + spec + "': expected tcp:HOST:PORT");
    r.unix = false;
    r.host = rest.substr(0, colon);
    if (r.host.size() > 2 && r.host.front() == '[' && r.host.back() == ']') r.host = r.host.substr(1, r.host.size() - 2);
    std::string port = rest.substr(colon + 1);
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
      return err("'" + spec + "': invalid port '" + port + "'");
    r.port = std::stoi(port);
    if (r.port < 1 || r.port > 65535) return err("'" + spec + "': port " + port + " is outside 1..65535");
    return r;
  }
  return err("'" + spec + "': expected unix:PATH or tcp:HOST:PORT");
}

// ---- connection

Result<std::unique_ptr<Connection>> Connection::open(const Remote& remote, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  auto sock = remote.unix ? StreamSocket::connectUnix(remote.path, deadline)
                          : StreamSocket::connectTcp(remote.host, remote.port, deadline);
  if (!sock) return err("ovsdb " + remote.str() + ": cannot connect: " + sock.error().message);
  return std::unique_ptr<Connection>(new Connection(remote, std::move(*sock), timeout));
}

Error Connection::peerError(const std::string& what) const { return err("ovsdb " + remote_.str() + ": " + what); }

Status Connection::sendAll(const std::string& bytes, Clock::time_point deadline) {
  if (Status st = sock_.sendAll(bytes, deadline); !st)
    return peerError(st.error().message == "timed out" ? "timed out sending a request" : st.error().message);
  return {};
}

std::string printable(const std::string& text, size_t max) {
  std::string out = text.substr(0, max);
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  if (text.size() > max) out += "...";
  return out;
}

std::optional<size_t> Framer::scan(const std::string& buf) {
  for (; pos_ < buf.size(); ++pos_) {
    char c = buf[pos_];
    if (!started_) {
      if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
      if (c != '{') return std::nullopt;  // a JSON-RPC message is an object
      started_ = true;
    }
    if (inString_) {
      if (escaped_) escaped_ = false;
      else if (c == '\\') escaped_ = true;
      else if (c == '"') inString_ = false;
      continue;
    }
    if (c == '"') {
      inString_ = true;
    } else if (c == '{' || c == '[') {
      if (open_.size() >= kMaxDepth) return std::nullopt;
      open_.push_back(c);
    } else if (c == '}' || c == ']') {
      if (open_.empty() || open_.back() != (c == '}' ? '{' : '[')) return std::nullopt;
      open_.pop_back();
      if (open_.empty()) return ++pos_;
    }
  }
  return 0;
}

Result<Json> Connection::readMessage(Clock::time_point deadline) {
  char chunk[65536];
  for (;;) {
    auto end = framer_.scan(buf_);
    if (!end) {
      broken_ = true;
      std::string head = buf_.substr(0, 40);
      for (char& c : head)
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
      return peerError("the peer sent something that is not a JSON-RPC message (or one nested deeper than " +
                       std::to_string(Framer::kMaxDepth) + " levels): '" + head + "'");
    }
    if (*end > 0) {
      Json msg = Json::parse(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(*end), nullptr, false);
      buf_.erase(0, *end);
      framer_.reset();
      if (msg.is_discarded() || !msg.is_object()) {
        broken_ = true;
        return peerError("the peer sent malformed JSON");
      }
      return msg;
    }
    if (buf_.size() > kMaxMessage) {
      broken_ = true;
      return peerError("a message from the peer exceeds " + std::to_string(kMaxMessage >> 20) + " MiB");
    }
    auto n = sock_.recvSome(chunk, sizeof chunk, deadline);
    if (!n) {
      broken_ = true;
      if (n.error().message == "timed out")
        return peerError("no reply within " + std::to_string(timeout_.count()) + " ms");
      return peerError(n.error().message);
    }
    if (*n == 0) {
      broken_ = true;
      return peerError(buf_.empty() ? "the peer closed the connection" : "the peer closed the connection mid-message");
    }
    buf_.append(chunk, *n);
  }
}

Result<Json> Connection::call(const std::string& method, Json params) {
  if (broken_) return peerError("the connection is unusable after an earlier protocol error");
  auto deadline = Clock::now() + timeout_;
  const uint64_t id = nextId_++;
  Json req{{"method", method}, {"params", std::move(params)}, {"id", id}};
  if (Status s = sendAll(req.dump(), deadline); !s) {
    broken_ = true;
    return s.error();
  }
  for (;;) {
    auto msg = readMessage(deadline);
    if (!msg) return msg.error();
    const Json& m = *msg;
    // The server's keepalive: {"method":"echo","params":[...],"id":X} must be answered.
    if (m.contains("method")) {
      if (m["method"] == "echo" && m.contains("id") && !m["id"].is_null()) {
        Json reply{{"result", m.value("params", Json::array())}, {"error", nullptr}, {"id", m["id"]}};
        if (Status s = sendAll(reply.dump(), deadline); !s) return s.error();
      }
      continue;  // notifications (e.g. "update") are not used by this client
    }
    if (!m.contains("id") || m["id"] != id) {
      if (m.contains("id") && m["id"].is_number_unsigned() && m["id"].get<uint64_t>() < id) continue;  // late reply
      broken_ = true;
      return peerError("a reply with an unexpected id: " + printable(m.value("id", Json()).dump(), 60));
    }
    const Json errorField = m.value("error", Json());
    if (!errorField.is_null()) {
      std::string text = errorField.is_string() ? errorField.get<std::string>() : errorField.dump();
      return peerError(method + " failed: " + printable(text));
    }
    if (!m.contains("result")) {
      broken_ = true;
      return peerError("a reply without result or error");
    }
    return m["result"];
  }
}

// ---- datum encodings

Json uuidRef(const std::string& uuid) { return Json::array({"uuid", uuid}); }
Json namedUuid(const std::string& name) { return Json::array({"named-uuid", name}); }

Json setOf(const std::vector<Json>& atoms) { return Json::array({"set", Json(atoms)}); }

Json mapOf(const std::map<std::string, std::string>& m) {
  Json pairs = Json::array();
  for (const auto& [k, v] : m) pairs.push_back(Json::array({k, v}));
  return Json::array({"map", pairs});
}

static bool isTagged(const Json& d, const char* tag) {
  return d.is_array() && d.size() == 2 && d[0].is_string() && d[0].get_ref<const std::string&>() == tag;
}

std::vector<Json> setAtoms(const Json& datum) {
  if (isTagged(datum, "set")) {
    if (!datum[1].is_array()) return {};
    return std::vector<Json>(datum[1].begin(), datum[1].end());
  }
  if (datum.is_null()) return {};
  return {datum};
}

std::map<std::string, Json> mapEntries(const Json& datum) {
  std::map<std::string, Json> out;
  if (!isTagged(datum, "map") || !datum[1].is_array()) return out;
  for (const auto& pair : datum[1]) {
    if (!pair.is_array() || pair.size() != 2) continue;
    if (pair[0].is_string()) out[pair[0].get<std::string>()] = pair[1];
    else if (pair[0].is_number_integer()) out[std::to_string(pair[0].get<int64_t>())] = pair[1];  // e.g. QoS queues
  }
  return out;
}

std::map<std::string, std::string> stringMap(const Json& datum) {
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : mapEntries(datum))
    if (v.is_string()) out[k] = v.get<std::string>();
  return out;
}

std::optional<std::string> uuidOf(const Json& atom) {
  if (isTagged(atom, "uuid") && atom[1].is_string()) return atom[1].get<std::string>();
  return std::nullopt;
}

std::optional<int64_t> intOf(const Json& datum) {
  auto atoms = setAtoms(datum);
  if (atoms.size() == 1 && atoms[0].is_number_integer()) return atoms[0].get<int64_t>();
  return std::nullopt;
}

std::optional<std::string> stringOf(const Json& datum) {
  auto atoms = setAtoms(datum);
  if (atoms.size() == 1 && atoms[0].is_string()) return atoms[0].get<std::string>();
  return std::nullopt;
}

// ---- transactions

Json whereUuid(const std::string& uuid) { return Json::array({Json::array({"_uuid", "==", uuidRef(uuid)})}); }
Json whereName(const std::string& name) { return Json::array({Json::array({"name", "==", name})}); }

Json Txn::insert(const std::string& table, Json row, const std::string& label) {
  std::string name = "row" + std::to_string(++counter_);
  named_[name] = ops_.size();
  add(ops_, Json{{"op", "insert"}, {"table", table}, {"row", std::move(row)}, {"uuid-name", name}}, label);
  return namedUuid(name);
}

void Txn::update(const std::string& table, const std::string& uuid, Json row, const std::string& label) {
  updateWhere(table, whereUuid(uuid), std::move(row), label);
}

void Txn::updateWhere(const std::string& table, Json where, Json row, const std::string& label) {
  add(ops_, Json{{"op", "update"}, {"table", table}, {"where", std::move(where)}, {"row", std::move(row)}}, label);
}

void Txn::mutate(const std::string& table, const std::string& uuid, Json mutations, const std::string& label) {
  mutateWhere(table, whereUuid(uuid), std::move(mutations), label);
}

void Txn::mutateWhere(const std::string& table, Json where, Json mutations, const std::string& label) {
  add(ops_, Json{{"op", "mutate"}, {"table", table}, {"where", std::move(where)}, {"mutations", std::move(mutations)}},
      label);
}

void Txn::remove(const std::string& table, const std::string& uuid, const std::string& label) {
  add(ops_, Json{{"op", "delete"}, {"table", table}, {"where", whereUuid(uuid)}}, label);
}

void Txn::wait(const std::string& table, Json where, std::vector<std::string> columns, Json rows,
               const std::string& label) {
  add(waits_,
      Json{{"op", "wait"},
           {"table", table},
           {"timeout", 0},
           {"where", std::move(where)},
           {"columns", columns},
           {"until", "=="},
           {"rows", std::move(rows)}},
      label);
}

void Txn::comment(const std::string& text) { add(ops_, Json{{"op", "comment"}, {"comment", text}}, "comment"); }

void Txn::select(const std::string& table, std::vector<std::string> columns, const std::string& label) {
  add(ops_, Json{{"op", "select"}, {"table", table}, {"where", Json::array()}, {"columns", columns}}, label);
}

void Txn::abort(const std::string& label) { add(ops_, Json{{"op", "abort"}}, label); }

const Op& Txn::at(size_t i) const { return i < waits_.size() ? waits_[i] : ops_[i - waits_.size()]; }

Json Txn::params() const {
  Json p = Json::array({db_});
  for (const auto& op : waits_) p.push_back(op.json);
  for (const auto& op : ops_) p.push_back(op.json);
  return p;
}

Txn::Outcome Txn::interpret(const Json& reply) const {
  Outcome o;
  if (!reply.is_array()) {
    o.ok = false;
    o.message = "the transaction reply is not a list of results";
    return o;
  }
  for (size_t i = 0; i < reply.size(); ++i) {
    const Json& r = reply[i];
    if (r.is_object() && r.contains("error") && !r["error"].is_null()) {
      o.ok = false;
      std::string error = r["error"].is_string() ? r["error"].get<std::string>() : r["error"].dump();
      std::string details = r.value("details", Json("")).is_string() ? r.value("details", std::string()) : "";
      if (i < size()) {
        o.stale = at(i).json.value("op", "") == "wait" && error == "timed out";
        o.failedStep = at(i).step;
        o.message = printable(at(i).label) + ": " + printable(error) + (details.empty() ? "" : " (" + printable(details) + ")");
      } else {
        // An extra result after the operations: the commit itself failed (e.g. a constraint violation).
        o.message = "commit: " + printable(error) + (details.empty() ? "" : " (" + printable(details) + ")");
      }
      return o;
    }
    o.results.push_back(r);
  }
  if (reply.size() < size()) {
    o.ok = false;
    o.message = "the transaction reply has " + std::to_string(reply.size()) + " results for " +
                std::to_string(size()) + " operations";
  }
  return o;
}

std::optional<std::string> Txn::insertedUuid(const Outcome& o, const std::string& named) const {
  auto it = named_.find(named);
  size_t index = waits_.size() + (it == named_.end() ? 0 : it->second);
  if (it == named_.end() || index >= o.results.size()) return std::nullopt;
  const Json& r = o.results[index];
  if (!r.is_object() || !r.contains("uuid")) return std::nullopt;
  return uuidOf(r["uuid"]);
}

}  // namespace vnetplan::ovs
