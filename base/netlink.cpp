#include "base/netlink.h"

#include <algorithm>
#include <netlink/attr.h>
#include <netlink/errno.h>
#include <netlink/handlers.h>
#include <netlink/socket.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "base/fd.h"
#include "base/netns.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

namespace vnetplan {

namespace {

struct Exchange {
  uint32_t seq = 0;
  const NlSocket::Handler* onMsg = nullptr;
  bool done = false;
  bool interrupted = false;
  int errnum = 0;
  std::string extack;
};

// NLMSG_ERROR: an ack (error 0) or the kernel's refusal, with its extended-ack message when it sent one.
void onError(const nlmsghdr* hdr, Exchange& x) {
  x.done = true;
  if (hdr->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) {
    x.errnum = EPROTO;
    return;
  }
  const auto* e = static_cast<const nlmsgerr*>(nlmsg_data(hdr));
  x.errnum = -e->error;
  if (e->error == 0 || !(hdr->nlmsg_flags & NLM_F_ACK_TLVS)) return;
  // Extended ack: NLMSGERR_ATTR_MSG after the (possibly capped) copy of our request.
  size_t off = sizeof(nlmsgerr);
  if (!(hdr->nlmsg_flags & NLM_F_CAPPED) && e->msg.nlmsg_len >= NLMSG_HDRLEN) off += e->msg.nlmsg_len - NLMSG_HDRLEN;
  off = NLMSG_ALIGN(off);
  const size_t payload = hdr->nlmsg_len - NLMSG_HDRLEN;
  if (off >= payload) return;
  nlattr* tb[NLMSGERR_ATTR_MAX + 1] = {};
  auto* attrs = reinterpret_cast<nlattr*>(const_cast<char*>(reinterpret_cast<const char*>(e)) + off);
  if (nla_parse(tb, NLMSGERR_ATTR_MAX, attrs, static_cast<int>(payload - off), nullptr) == 0 && tb[NLMSGERR_ATTR_MSG]) {
    const char* text = static_cast<const char*>(nla_data(tb[NLMSGERR_ATTR_MSG]));
    x.extack.assign(text, strnlen(text, static_cast<size_t>(nla_len(tb[NLMSGERR_ATTR_MSG]))));
  }
}

// One datagram's messages: replies to the current request go to the handler until its DONE or ack; anything
// answering an earlier, abandoned request is skipped.
void dispatch(const char* data, size_t len, Exchange& x) {
  auto* h = reinterpret_cast<const nlmsghdr*>(data);
  int left = static_cast<int>(len);
  for (; !x.done && NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
    if (h->nlmsg_seq != x.seq) continue;
    if (h->nlmsg_flags & NLM_F_DUMP_INTR) x.interrupted = true;
    switch (h->nlmsg_type) {
      case NLMSG_NOOP:
      case NLMSG_OVERRUN:
        break;
      case NLMSG_DONE:
        // NLMSG_DONE carries the dump's error code, if any.
        if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(int))) {
          int code = 0;
          std::memcpy(&code, NLMSG_DATA(h), sizeof code);
          if (code < 0) x.errnum = -code;
        }
        x.done = true;
        break;
      case NLMSG_ERROR:
        onError(h, x);
        break;
      default:
        if (x.onMsg && *x.onMsg) (*x.onMsg)(h);
    }
  }
}

std::string describeErrno(int errnum, const std::string& extack) {
  std::string msg = errnoText(errnum);
  if (!extack.empty()) msg += " (kernel: " + extack + ")";
  return msg;
}

}  // namespace

NlMsg newMsg(int type, int flags) { return NlMsg(nlmsg_alloc_simple(type, flags)); }

Result<std::unique_ptr<NlSocket>> NlSocket::open(int protocol) {
  std::unique_ptr<NlSocket> s(new NlSocket());
  s->sk_ = nl_socket_alloc();
  if (!s->sk_) return err("netlink: cannot allocate a socket");
  int rc = nl_connect(s->sk_, protocol);
  if (rc < 0)
    return err(std::string("netlink: cannot open a ") + (protocol == NETLINK_ROUTE ? "route" : "netfilter") +
               " socket: " + nl_geterror(rc));
  int one = 1;
  int fd = nl_socket_get_fd(s->sk_);
  // Best effort: the kernel's reason for a refusal, and acks without a copy of our request.
  (void)setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  (void)setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  return s;
}

Result<std::unique_ptr<NlSocket>> NlSocket::openIn(int nsFd, int protocol) {
  if (nsFd < 0) return open(protocol);
  std::unique_ptr<NlSocket> out;
  Status st = runInNetns(nsFd, [&]() -> Status {
    auto s = open(protocol);
    if (!s.ok()) return s.error();
    out = std::move(s.value());
    return {};
  });
  if (!st.ok()) return st.error();
  return out;
}

NlSocket::~NlSocket() {
  if (sk_) nl_socket_free(sk_);
}

// libnl builds and sends the request; the replies are read here, straight from one buffer kept with the socket:
// libnl's receive path allocates a buffer per datagram and a copy per message, which cost more than the kernel's
// own work on a dump of thousands of links.
NlOutcome NlSocket::exchange(nl_msg* msg, const Handler& onReply, bool* interrupted) {
  std::lock_guard<std::mutex> lock(mu_);
  Exchange x;
  x.onMsg = &onReply;
  int rc = nl_send_auto(sk_, msg);
  if (rc < 0) return {0, std::string("netlink send failed: ") + nl_geterror(rc)};
  x.seq = nlmsg_hdr(msg)->nlmsg_seq;
  const int fd = nl_socket_get_fd(sk_);
  while (!x.done) {
    // One recv per datagram, into a buffer far larger than any (dump datagrams stay below 32 KiB; one message of
    // a link with hundreds of altnames or VFs may reach tens of KiB); untouched pages cost nothing.
    ssize_t n = ::recv(fd, buf_.get(), kBufSize, MSG_TRUNC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return {errno, std::string("netlink receive failed: ") + errnoText(errno)};
    if (static_cast<size_t>(n) > kBufSize)
      return {EMSGSIZE, "netlink reply of " + std::to_string(n) + " bytes is larger than the " +
                            std::to_string(kBufSize) + "-byte receive buffer"};
    dispatch(buf_.get(), static_cast<size_t>(n), x);
  }
  if (interrupted) *interrupted = x.interrupted;
  if (x.errnum != 0) return {x.errnum, describeErrno(x.errnum, x.extack)};
  return {};
}

NlOutcome NlSocket::request(nl_msg* msg, const Handler& onReply) { return exchange(msg, onReply, nullptr); }

NlOutcome NlSocket::dump(nl_msg* msg, const Handler& onMsg, const std::function<void()>& reset) {
  // Right after links are made the kernel keeps changing the address table for a while (IPv6 DAD moves
  // addresses from tentative to permanent), so a dump can be interrupted many times in a row.
  constexpr int kAttempts = 12;
  NlOutcome out;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    if (attempt > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(5 << attempt, 250)));  // 10 ... 250 ms
      if (reset) reset();
      nlmsg_hdr(msg)->nlmsg_seq = NL_AUTO_SEQ;  // resend as a new request
    }
    bool interrupted = false;
    out = exchange(msg, onMsg, &interrupted);
    out.retries = attempt;
    if (!out.ok() || !interrupted) return out;
  }
  out.inconsistent = true;
  return out;
}

}  // namespace vnetplan
