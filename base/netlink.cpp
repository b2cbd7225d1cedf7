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

int onSeqCheck(nl_msg* m, void* arg) {
  auto* x = static_cast<Exchange*>(arg);
  // Anything not answering the current request (left over from an abandoned one) is skipped.
  return nlmsg_hdr(m)->nlmsg_seq == x->seq ? NL_OK : NL_SKIP;
}

int onValid(nl_msg* m, void* arg) {
  auto* x = static_cast<Exchange*>(arg);
  if (x->onMsg && *x->onMsg) (*x->onMsg)(nlmsg_hdr(m));
  return NL_OK;
}

int onFinish(nl_msg* m, void* arg) {
  auto* x = static_cast<Exchange*>(arg);
  const nlmsghdr* h = nlmsg_hdr(m);
  // NLMSG_DONE carries the dump's error code, if any.
  if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(int))) {
    int code = 0;
    std::memcpy(&code, nlmsg_data(h), sizeof code);
    if (code < 0) x->errnum = -code;
  }
  x->done = true;
  return NL_STOP;
}

int onAck(nl_msg*, void* arg) {
  static_cast<Exchange*>(arg)->done = true;
  return NL_STOP;
}

int onDumpIntr(nl_msg*, void* arg) {
  static_cast<Exchange*>(arg)->interrupted = true;
  return NL_OK;
}

int onError(sockaddr_nl*, nlmsgerr* e, void* arg) {
  auto* x = static_cast<Exchange*>(arg);
  const auto* hdr = reinterpret_cast<const nlmsghdr*>(reinterpret_cast<const char*>(e) - NLMSG_HDRLEN);
  if (hdr->nlmsg_seq != x->seq) return NL_SKIP;
  x->errnum = -e->error;
  x->done = true;
  // Extended ack: NLMSGERR_ATTR_MSG after the (possibly capped) copy of our request.
  if (hdr->nlmsg_flags & NLM_F_ACK_TLVS) {
    size_t off = sizeof(nlmsgerr);
    if (!(hdr->nlmsg_flags & NLM_F_CAPPED) && e->msg.nlmsg_len >= NLMSG_HDRLEN)
      off += e->msg.nlmsg_len - NLMSG_HDRLEN;
    off = NLMSG_ALIGN(off);
    size_t payload = hdr->nlmsg_len - NLMSG_HDRLEN;
    if (off < payload) {
      nlattr* tb[NLMSGERR_ATTR_MAX + 1] = {};
      auto* attrs = reinterpret_cast<nlattr*>(reinterpret_cast<char*>(e) + off);
      if (nla_parse(tb, NLMSGERR_ATTR_MAX, attrs, static_cast<int>(payload - off), nullptr) == 0 &&
          tb[NLMSGERR_ATTR_MSG]) {
        const char* s = static_cast<const char*>(nla_data(tb[NLMSGERR_ATTR_MSG]));
        x->extack.assign(s, strnlen(s, static_cast<size_t>(nla_len(tb[NLMSGERR_ATTR_MSG]))));
      }
    }
  }
  return NL_STOP;
}

std::string describeErrno(int errnum, const std::string& extack) {
  std::string msg = errnoText(errnum);
  if (!extack.empty()) msg += " (kernel: " + extack + ")";
  return msg;
}

}  // namespace

NlMsg newMsg(int type, int flags) { return NlMsg(nlmsg_alloc_simple(type, flags)); }

Result<std::unique_ptr<NlSocket>> NlSocket::open() {
  std::unique_ptr<NlSocket> s(new NlSocket());
  s->sk_ = nl_socket_alloc();
  if (!s->sk_) return err("netlink: cannot allocate a socket");
  int rc = nl_connect(s->sk_, NETLINK_ROUTE);
  if (rc < 0) return err(std::string("netlink: cannot open a route socket: ") + nl_geterror(rc));
  int one = 1;
  int fd = nl_socket_get_fd(s->sk_);
  // Best effort: the kernel's reason for a refusal, and acks without a copy of our request.
  (void)setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  (void)setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  // One recvmsg per datagram (no MSG_PEEK round). Dump datagrams stay below 32 KiB, but one message may be far
  // larger (a link with hundreds of altnames or VFs: the kernel then sizes the datagram to the message), and a
  // buffer too small truncates it. glibc serves the buffer from the heap after the first one is freed.
  nl_socket_set_msg_buf_size(s->sk_, 1024 * 1024);
  nl_socket_disable_msg_peek(s->sk_);
  nl_cb* base = nl_socket_get_cb(s->sk_);  // takes a reference
  s->cb_ = nl_cb_clone(base);
  nl_cb_put(base);
  if (!s->cb_) return err("netlink: cannot allocate callbacks");
  return s;
}

Result<std::unique_ptr<NlSocket>> NlSocket::openIn(int nsFd) {
  if (nsFd < 0) return open();
  std::unique_ptr<NlSocket> out;
  Status st = runInNetns(nsFd, [&]() -> Status {
    auto s = open();
    if (!s.ok()) return s.error();
    out = std::move(s.value());
    return {};
  });
  if (!st.ok()) return st.error();
  return out;
}

NlSocket::~NlSocket() {
  if (cb_) nl_cb_put(cb_);
  if (sk_) nl_socket_free(sk_);
}

NlOutcome NlSocket::exchange(nl_msg* msg, const Handler& onReply, bool* interrupted) {
  Exchange x;
  x.onMsg = &onReply;
  nl_cb_set(cb_, NL_CB_SEQ_CHECK, NL_CB_CUSTOM, onSeqCheck, &x);
  nl_cb_set(cb_, NL_CB_VALID, NL_CB_CUSTOM, onValid, &x);
  nl_cb_set(cb_, NL_CB_FINISH, NL_CB_CUSTOM, onFinish, &x);
  nl_cb_set(cb_, NL_CB_ACK, NL_CB_CUSTOM, onAck, &x);
  nl_cb_set(cb_, NL_CB_DUMP_INTR, NL_CB_CUSTOM, onDumpIntr, &x);
  nl_cb_err(cb_, NL_CB_CUSTOM, onError, &x);

  int rc = nl_send_auto(sk_, msg);
  if (rc < 0) return {0, std::string("netlink send failed: ") + nl_geterror(rc)};
  x.seq = nlmsg_hdr(msg)->nlmsg_seq;
  while (!x.done) {
    rc = nl_recvmsgs(sk_, cb_);
    if (x.done) break;
    if (rc < 0) return {0, std::string("netlink receive failed: ") + nl_geterror(rc)};
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
    if (!out.ok() || !interrupted) return out;
  }
  out.inconsistent = true;
  return out;
}

}  // namespace vnetplan
