#include "providers/linux/shaping.h"

#include <linux/pkt_sched.h>

#include <algorithm>
#include <linux/rtnetlink.h>
#include <netlink/msg.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/tbf.h>
#include <netlink/route/tc.h>

#include "providers/linux/session.h"

namespace vnetplan::lnx {

namespace {

constexpr int64_t kMaxKbps = 2147483647LL / 125;  // libnl's TBF rate is an int of bytes/s
constexpr int64_t kMaxBurstKiB = 1048576;          // 1 GiB
constexpr int kLatencyUs = 50000;

struct QdiscFree {
  void operator()(rtnl_qdisc* q) const { rtnl_qdisc_put(q); }
};
using QdiscPtr = std::unique_ptr<rtnl_qdisc, QdiscFree>;

void onQdisc(nl_object* obj, void* arg) {
  auto* out = static_cast<std::map<int, Json>*>(arg);
  auto* q = reinterpret_cast<rtnl_qdisc*>(obj);
  const char* kind = rtnl_tc_get_kind(TC_CAST(q));
  if (!kind || rtnl_tc_get_parent(TC_CAST(q)) != TC_H_ROOT) return;
  if (std::string(kind) == "htb") {  // a switch's NIOC tree (nioc.h)
    (*out)[rtnl_tc_get_ifindex(TC_CAST(q))] = Json{{"kind", "htb"}, {"handle", rtnl_tc_get_handle(TC_CAST(q))}};
    return;
  }
  if (std::string(kind) != "tbf") return;
  Json j{{"kind", "tbf"}, {"rate", rtnl_qdisc_tbf_get_rate(q)}, {"bucket", rtnl_qdisc_tbf_get_rate_bucket(q)}};
  if (int peak = rtnl_qdisc_tbf_get_peakrate(q); peak > 0) j["peak"] = peak;
  (*out)[rtnl_tc_get_ifindex(TC_CAST(q))] = j;
}

}  // namespace

bool shapingPath(const std::string& path) { return path.rfind("shaping.", 0) == 0; }

void checkShapingField(const FieldCheck& fc) {
  if (fc.path == "shaping.burstKiB") fc.requireInt(1, kMaxBurstKiB, "KiB");
  else fc.requireInt(1, kMaxKbps, "kbit/s");
}

void checkShaping(const Resource& r, Diagnostics& diags) {
  bool any = false;
  for (const auto& [path, v] : r.attrs.values()) any = any || shapingPath(path);
  if (!any) return;
  auto fail = [&](const std::string& m) { diags.error(r.locOf("shaping.averageKbps"), "linux: " + r.addr.str() + ": " + m, "provider/invalid"); };
  auto avg = r.attrs.getInt("shaping.averageKbps"), peak = r.attrs.getInt("shaping.peakKbps");
  if (!avg || !r.attrs.getInt("shaping.burstKiB"))
    fail("shaping needs averageKbps and burstKiB (a token bucket: its rate and its size)");
  else if (peak && *peak < *avg)
    fail("shaping.peakKbps " + std::to_string(*peak) + " is below averageKbps " + std::to_string(*avg));
}

Status syncShaping(LinuxSession& s, const std::string& port, const Attrs& a) {
  const std::string what = "set the shaping of port " + port;
  auto link = s.getLink(port);
  if (!link.ok()) return s.failure(what, link.error().message);
  auto avg = a.getInt("shaping.averageKbps"), burst = a.getInt("shaping.burstKiB"), peak = a.getInt("shaping.peakKbps");
  QdiscPtr q(rtnl_qdisc_alloc());
  if (!q) return s.failure(what, "out of memory");
  rtnl_tc_set_ifindex(TC_CAST(q.get()), link->index);
  rtnl_tc_set_parent(TC_CAST(q.get()), TC_H_ROOT);
  nl_msg* raw = nullptr;
  if (!avg || !burst) {
    const auto& qd = s.qdiscs();
    if (!s.observeError().empty()) return s.failure(what, s.observeError());
    if (auto it = qd.find(link->index); it == qd.end() || it->second.value("kind", "") != "tbf") return {};
    int rc = rtnl_qdisc_build_delete_request(q.get(), &raw);
    if (rc < 0) return s.failure(what, nl_geterror(rc));
    NlMsg msg(raw);
    NlOutcome o = s.nl().request(msg.get());
    if (!o.ok() && o.errnum != ENOENT && o.errnum != EINVAL) return s.failure(what + ": remove the TBF", o.message);
    return {};
  }
  rtnl_tc_set_handle(TC_CAST(q.get()), TC_HANDLE(1, 0));
  if (rtnl_tc_set_kind(TC_CAST(q.get()), "tbf") < 0) return s.failure(what, "libnl has no tbf");
  rtnl_qdisc_tbf_set_rate(q.get(), static_cast<int>(*avg * 125), static_cast<int>(*burst * 1024), 0);
  if (peak) {
    // One full frame must fit: the kernel keeps the minimum burst as time at the peak rate, which loses a few bytes
    // (1514 came back as 1505, and every full-size frame was dropped), so it gets room to spare.
    int minburst = std::max(2048, static_cast<int>(link->mtu) + 14 + 64);
    // libnl refuses a cell size of 0 (auto) for the peak rate; 8 bytes is what tc picks for such rates.
    if (int rc = rtnl_qdisc_tbf_set_peakrate(q.get(), static_cast<int>(*peak * 125), minburst, 8); rc < 0)
      return s.failure(what, std::string("peakKbps: ") + nl_geterror(rc));
  }
  if (int rc = rtnl_qdisc_tbf_set_limit_by_latency(q.get(), kLatencyUs); rc < 0) return s.failure(what, nl_geterror(rc));
  int rc = rtnl_qdisc_build_add_request(q.get(), NLM_F_CREATE | NLM_F_REPLACE, &raw);
  if (rc < 0) return s.failure(what, nl_geterror(rc));
  NlMsg msg(raw);
  NlOutcome o = s.nl().request(msg.get());
  if (!o.ok()) return s.failure(what + " (TBF)", o.message);
  return {};
}

void observeShaping(LinuxSession& s, const LinkInfo& l, Attrs& a) {
  const auto& qd = s.qdiscs();
  auto it = qd.find(l.index);
  if (it == qd.end() || it->second.value("kind", "") != "tbf") return;
  const Json& t = it->second;
  int64_t rate = t.value("rate", 0), bucket = t.value("bucket", 0);
  a.set("shaping.averageKbps", rate % 125 == 0 ? Json(rate / 125) : Json(static_cast<double>(rate) / 125.0));
  a.set("shaping.burstKiB", (bucket + 512) / 1024);  // the kernel keeps it as time: back to the nearest KiB
  if (t.contains("peak")) {
    int64_t peak = t["peak"].get<int64_t>();
    a.set("shaping.peakKbps", peak % 125 == 0 ? Json(peak / 125) : Json(static_cast<double>(peak) / 125.0));
  }
}

NlOutcome dumpTc(NlSocket& sock, int type, int ifindex, void (*onObject)(nl_object*, void*), void* arg,
                 const std::function<void()>& reset) {
  NlMsg m = newMsg(type, NLM_F_DUMP);
  tcmsg tcm{};
  tcm.tcm_family = AF_UNSPEC;
  tcm.tcm_ifindex = ifindex;
  if (!m || nlmsg_append(m.get(), &tcm, sizeof tcm, NLMSG_ALIGNTO) < 0) return {ENOMEM, "out of memory"};
  return sock.dump(
      m.get(),
      [&](const nlmsghdr* h) {
        nl_msg* msg = nlmsg_convert(const_cast<nlmsghdr*>(h));
        if (!msg) return;
        nlmsg_set_proto(msg, NETLINK_ROUTE);  // nl_msg_parse finds the parser by protocol and type
        (void)nl_msg_parse(msg, onObject, arg);
        nlmsg_free(msg);
      },
      reset);
}

Result<std::map<int, Json>> dumpTbfQdiscs(NlSocket& sock) {
  std::map<int, Json> out;
  NlOutcome o = dumpTc(sock, RTM_GETQDISC, 0, onQdisc, &out, [&] { out.clear(); });
  if (!o.ok()) return err(o.message);
  return out;
}

}  // namespace vnetplan::lnx
