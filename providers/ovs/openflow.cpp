#include "providers/ovs/openflow.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

namespace vnetplan::ovs {

namespace {

using Clock = std::chrono::steady_clock;

constexpr uint8_t kVersion = 4;  // OpenFlow 1.3
enum : uint8_t {
  kHello = 0,
  kError = 1,
  kEchoRequest = 2,
  kEchoReply = 3,
  kFlowMod = 14,
  kMultipartRequest = 18,
  kMultipartReply = 19,
  kBarrierRequest = 20,
  kBarrierReply = 21,
};
constexpr uint32_t kAny = 0xffffffff;     // OFPP_ANY, OFPG_ANY, OFP_NO_BUFFER
constexpr uint32_t kNormal = 0xfffffffa;  // OFPP_NORMAL
constexpr size_t kMaxMessage = 65535;

void put8(std::string& s, uint8_t v) { s.push_back(static_cast<char>(v)); }
void put16(std::string& s, uint16_t v) { put8(s, v >> 8), put8(s, v & 0xff); }
void put32(std::string& s, uint32_t v) { put16(s, v >> 16), put16(s, v & 0xffff); }
void put64(std::string& s, uint64_t v) { put32(s, v >> 32), put32(s, v & 0xffffffff); }
void pad(std::string& s, size_t n) { s.append(n, '\0'); }
uint16_t get16(const std::string& s, size_t o) {
  return static_cast<uint16_t>((static_cast<uint8_t>(s[o]) << 8) | static_cast<uint8_t>(s[o + 1]));
}
uint32_t get32(const std::string& s, size_t o) { return (uint32_t{get16(s, o)} << 16) | get16(s, o + 2); }
uint64_t get64(const std::string& s, size_t o) { return (uint64_t{get32(s, o)} << 32) | get32(s, o + 4); }

std::string header(uint8_t type, uint32_t xid) {
  std::string s;
  put8(s, kVersion);
  put8(s, type);
  put16(s, 8);  // patched by finish()
  put32(s, xid);
  return s;
}
std::string finish(std::string s) {
  s[2] = static_cast<char>(s.size() >> 8);
  s[3] = static_cast<char>(s.size() & 0xff);
  return s;
}

// An OXM match holding only in_port (or nothing), padded to 8 bytes.
void putMatch(std::string& s, const uint32_t* inPort) {
  size_t start = s.size();
  put16(s, 1);  // OFPMT_OXM
  put16(s, inPort ? 12 : 4);
  if (inPort) {
    put32(s, 0x80000004);  // OFPXMC_OPENFLOW_BASIC, OFPXMT_OFB_IN_PORT, 4 bytes
    put32(s, *inPort);
  }
  pad(s, (8 - (s.size() - start) % 8) % 8);
}

enum : uint8_t { kAdd = 0, kModifyStrict = 2, kDeleteStrict = 4 };

// One queue flow, by its exact match (in_port at vnetplan's priority) and cookie: an add of a new one, a strict
// modify of one of ours whose queue changes (same rule, new actions: it never leaves the table), or a strict delete
// of one of ours that is no longer wanted.
std::string flowMod(uint32_t xid, uint8_t command, const QueueFlow& flow) {
  std::string s = header(kFlowMod, xid);
  put64(s, kFlowCookie);
  put64(s, command == kAdd ? 0 : ~uint64_t{0});  // modify/delete: only a flow with exactly our cookie
  put8(s, 0);                                    // table 0
  put8(s, command);
  put16(s, 0), put16(s, 0);  // idle, hard timeout
  put16(s, kQueueFlowPriority);
  put32(s, kAny), put32(s, kAny), put32(s, kAny);  // buffer, out_port, out_group
  // An add checks for overlap: a user's flow with the same match and priority is refused, never replaced.
  put16(s, command == kAdd ? 0x0002 : 0);  // OFPFF_CHECK_OVERLAP
  pad(s, 2);
  putMatch(s, &flow.inPort);
  if (command != kDeleteStrict) {
    put16(s, 4);   // OFPIT_APPLY_ACTIONS
    put16(s, 32);  // 8 + set_queue (8) + output (16)
    pad(s, 4);
    put16(s, 21), put16(s, 8), put32(s, flow.queue);  // OFPAT_SET_QUEUE
    put16(s, 0), put16(s, 16), put32(s, kNormal), put16(s, 0), pad(s, 6);  // OFPAT_OUTPUT NORMAL
  }
  return finish(s);
}

std::string errorText(uint16_t type, uint16_t code) {
  static const char* types[] = {"hello failed", "bad request", "bad action", "bad instruction", "bad match",
                                "flow mod failed", "group mod failed", "port mod failed", "table mod failed",
                                "queue op failed", "switch config failed", "role request failed", "meter mod failed",
                                "table features failed"};
  std::string t = type < std::size(types) ? types[type] : "error type " + std::to_string(type);
  return t + " (code " + std::to_string(code) + ")";
}

}  // namespace

Error OpenFlowChannel::failure(const std::string& what) const { return err("openflow " + path_ + ": " + what); }

Result<std::unique_ptr<OpenFlowChannel>> OpenFlowChannel::open(const std::string& socketPath,
                                                               std::chrono::milliseconds timeout) {
  auto sock = StreamSocket::connectUnix(socketPath, Clock::now() + timeout);
  if (!sock)
    return err("openflow " + socketPath + ": cannot connect: " + sock.error().message +
               " (is ovs-vswitchd running on this host?)");
  std::unique_ptr<OpenFlowChannel> ch(new OpenFlowChannel(socketPath, std::move(*sock), timeout));
  if (Status s = ch->send(finish(header(kHello, ch->xid_++))); !s) return s.error();
  auto deadline = Clock::now() + timeout;
  auto hello = ch->receive(deadline);
  if (!hello) return hello.error();
  if (static_cast<uint8_t>((*hello)[1]) != kHello) return ch->failure("expected HELLO from the switch");
  if (static_cast<uint8_t>((*hello)[0]) < kVersion)
    return ch->failure("the switch speaks OpenFlow version " + std::to_string(static_cast<uint8_t>((*hello)[0])) +
                       " only; vnetplan needs OpenFlow 1.3 (Bridge protocols)");
  return ch;
}

Status OpenFlowChannel::send(const std::string& msg) {
  if (Status st = sock_.sendAll(msg, Clock::now() + timeout_); !st) return failure("send: " + st.error().message);
  return {};
}

Result<std::string> OpenFlowChannel::receive(Clock::time_point deadline) {
  char chunk[65536];
  for (;;) {
    if (buf_.size() >= 8) {
      if (static_cast<uint8_t>(buf_[0]) == 0 || static_cast<uint8_t>(buf_[0]) > 6)
        return failure("the peer does not speak OpenFlow");
      size_t len = get16(buf_, 2);
      if (len < 8 || len > kMaxMessage) return failure("a message with an invalid length");
      if (buf_.size() >= len) {
        std::string msg = buf_.substr(0, len);
        buf_.erase(0, len);
        uint8_t type = static_cast<uint8_t>(msg[1]);
        if (type == kEchoRequest) {
          std::string reply = msg;
          reply[0] = static_cast<char>(kVersion);
          reply[1] = static_cast<char>(kEchoReply);
          if (Status s = send(reply); !s) return s.error();
          continue;
        }
        if (type == kError && msg.size() >= 12 && static_cast<uint8_t>(msg[0]) == kVersion)
          return failure("the switch refused a request: " + errorText(get16(msg, 8), get16(msg, 10)));
        return msg;
      }
    }
    auto n = sock_.recvSome(chunk, sizeof chunk, deadline);
    if (!n) {
      if (n.error().message == "timed out") return failure("no reply within " + std::to_string(timeout_.count()) + " ms");
      return failure("recv: " + n.error().message);
    }
    if (*n == 0) return failure("the switch closed the connection");
    buf_.append(chunk, *n);
  }
}

Result<std::vector<QueueFlow>> OpenFlowChannel::queueFlows() { return flows(true); }

// Flow stats of table 0..N: with `ours`, the queue flows carrying vnetplan's cookie; otherwise the in_port of
// every other flow at vnetplan's priority whose only match is in_port (what an add of ours would replace).
Result<std::vector<QueueFlow>> OpenFlowChannel::flows(bool ours) {
  const uint32_t xid = xid_++;
  std::string req = header(kMultipartRequest, xid);
  put16(req, 1);  // OFPMP_FLOW
  put16(req, 0);
  pad(req, 4);
  put8(req, 0xff);  // all tables
  pad(req, 3);
  put32(req, kAny), put32(req, kAny);
  pad(req, 4);
  put64(req, ours ? kFlowCookie : 0), put64(req, ours ? ~uint64_t{0} : 0);
  putMatch(req, nullptr);
  if (Status s = send(finish(req)); !s) return s.error();
  std::vector<QueueFlow> out;
  auto deadline = Clock::now() + timeout_;
  for (;;) {
    auto msg = receive(deadline);
    if (!msg) return msg.error();
    const std::string& m = *msg;
    if (static_cast<uint8_t>(m[1]) != kMultipartReply || get32(m, 4) != xid) continue;
    if (m.size() < 16) return failure("a truncated flow stats reply");
    const bool more = get16(m, 10) & 1;
    for (size_t o = 16; o + 56 <= m.size();) {
      size_t len = get16(m, o);
      if (len < 56 || o + len > m.size()) return failure("a malformed flow stats entry");
      QueueFlow f;
      bool haveQueue = false;
      int fields = 0;
      size_t mo = o + 48;  // the match
      size_t mlen = get16(m, mo + 2);
      if (mlen < 4 || mo + mlen > o + len) return failure("a malformed match");
      for (size_t x = mo + 4; x + 4 <= mo + mlen;) {
        uint32_t h = get32(m, x);
        size_t flen = h & 0xff;
        if (x + 4 + flen > mo + mlen) break;
        if ((h >> 16) == 0x8000 && ((h >> 9) & 0x7f) == 0 && flen == 4) f.inPort = get32(m, x + 4);
        ++fields;
        x += 4 + flen;
      }
      for (size_t i = mo + (mlen + 7) / 8 * 8; i + 8 <= o + len;) {
        uint16_t itype = get16(m, i), ilen = get16(m, i + 2);
        if (ilen < 8 || i + ilen > o + len) break;
        if (itype == 4)
          for (size_t a = i + 8; a + 8 <= i + ilen;) {
            uint16_t atype = get16(m, a), alen = get16(m, a + 2);
            if (alen < 8 || a + alen > i + ilen) break;
            if (atype == 21) f.queue = get32(m, a + 4), haveQueue = true;
            a += alen;
          }
        i += ilen;
      }
      const bool mine = get64(m, o + 24) == kFlowCookie;
      if (ours && mine && haveQueue) out.push_back(f);
      if (!ours && !mine && get16(m, o + 12) == kQueueFlowPriority && fields == 1 && f.inPort) out.push_back(f);
      o += len;
    }
    if (!more) break;
  }
  std::sort(out.begin(), out.end());
  return out;
}

Status OpenFlowChannel::replaceQueueFlows(const std::vector<QueueFlow>& want, const std::vector<QueueFlow>& have) {
  // An add replaces a flow with the same match and priority whoever made it: refuse instead.
  auto foreign = flows(false);
  if (!foreign) return foreign.error();
  for (const auto& f : *foreign)
    for (const auto& w : want)
      if (w.inPort == f.inPort)
        return failure("a flow vnetplan did not make already matches in_port=" + std::to_string(f.inPort) +
                       " at priority " + std::to_string(kQueueFlowPriority) + "; vnetplan will not replace it");
  std::map<uint32_t, uint32_t> current, wanted;
  for (const auto& f : have) current[f.inPort] = f.queue;
  for (const auto& f : want) wanted[f.inPort] = f.queue;
  // Every port that should be classified stays classified throughout: changed flows are modified in place and new
  // ones added before anything is deleted, and only flows no port wants any more are deleted, last. The switch
  // processes one connection's messages in order; the barrier waits for all of them.
  std::vector<std::pair<uint8_t, QueueFlow>> mods;
  for (const auto& [port, queue] : wanted) {
    auto it = current.find(port);
    if (it == current.end()) mods.push_back({kAdd, QueueFlow{port, queue}});
    else if (it->second != queue) mods.insert(mods.begin(), {kModifyStrict, QueueFlow{port, queue}});
  }
  for (const auto& [port, queue] : current)
    if (!wanted.count(port)) mods.push_back({kDeleteStrict, QueueFlow{port, queue}});
  for (const auto& [command, flow] : mods)
    if (Status s = send(flowMod(xid_++, command, flow)); !s) return s;
  const uint32_t xid = xid_++;
  if (Status s = send(finish(header(kBarrierRequest, xid))); !s) return s;
  auto deadline = Clock::now() + timeout_;
  for (;;) {
    auto msg = receive(deadline);  // an error reply to any flow mod surfaces here
    if (!msg) return msg.error();
    if (static_cast<uint8_t>((*msg)[1]) == kBarrierReply && get32(*msg, 4) == xid) return {};
  }
}

}  // namespace vnetplan::ovs
