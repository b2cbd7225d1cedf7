// TargetSession of the linux provider: one route-netlink socket inside the target's network namespace,
// reused for every observe and step; one link dump + one address dump per observe; steps dispatched to the
// kind hooks (kind.h).
#pragma once
#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <vector>
#include <string>
#include <unordered_map>
#include <utility>

#include "providers/linux/kind.h"
#include "base/netlink.h"
#include "base/netns.h"
#include "providers/linux/topology.h"
#include "reconciler/provider.h"

namespace vnetplan::lnx {

using Fd = UniqueFd;

class LinuxSession : public TargetSession {
 public:
  // Opens the target's namespace (spec.netns; absent = the current one). A missing namespace with
  // createNetns: true is created lazily by the first apply(), so plan and drift never change the host.
  static Result<std::unique_ptr<LinuxSession>> connect(const Target& target);

  Result<Observation> observe() override;
  Status apply(const Step& step) override;
  // Probes run inside the target's namespace: that is where its traffic is.
  Status probe(const Probe& p, std::chrono::milliseconds timeout) override;

  // ---- for the kind hooks
  NlSocket& nl() { return *nl_; }
  const std::string& targetName() const { return target_; }
  const std::string& netns() const { return netns_; }  // "" = the host (current) namespace
  int nsFd() const { return nsFd_.get(); }              // -1 = the current namespace
  // "in netns demo" / "in the host netns"
  std::string where() const;
  // "linux: <what> in netns demo: <detail>"
  Error failure(const std::string& what, const std::string& detail) const;

  // ifindex of a link of this namespace: from the last observe and this session's creates, else asked.
  Result<int> ifindex(const std::string& name);
  // One link as the kernel has it now (RTM_GETLINK by name).
  Result<LinkInfo> getLink(const std::string& name);
  void remember(const std::string& name, int index) {
    index_[name] = index;
    nextIndex_ = std::max(nextIndex_, index + 1);
  }
  // Creating links: `reserveIndexes(n)` sets aside n consecutive ifindexes for links about to be made in this
  // namespace (above every index the session knows; 0 when it knows none: it has not observed) and
  // `createLink` sends the RTM_NEWLINK that makes `name` with the first of them, so the new link's index is known
  // without a second round trip (kernels before 6.3 ignore NLM_F_ECHO on RTM_NEWLINK, and asking the kernel by
  // name doubles the requests of an apply). When another process took that index in the meantime (EBUSY), or
  // none was reserved, the kernel picks one and the link is asked for. The index is remembered.
  int reserveIndexes(int n) {
    if (nextIndex_ <= 1) return 0;
    const int first = nextIndex_;
    nextIndex_ += n;
    return first;
  }
  // `reserved`: what reserveIndexes gave (a veth sets its peer's index to the next one); -1 reserves one here.
  Result<int> createLink(nl_msg* m, const std::string& name, int reserved = -1);
  // The name of a link this session knows ("" if none).
  std::string nameOf(int index) const;
  void forget(const std::string& name) { index_.erase(name); }

  // An open fd of /run/netns/NAME (kept for the session), e.g. for a veth peer's IFLA_NET_NS_FD.
  Result<int> netnsFd(const std::string& name);
  // A netlink socket inside another named namespace (kept for the session), e.g. to update a veth peer.
  Result<NlSocket*> socketIn(const std::string& netnsName);

  // During observe: adds an object of `row`'s kind for every link `matches` accepts, with the attributes every
  // link has (mtu, up, addresses; for a Port type, mac, linux.txQueueLen, switch) and then `kindAttrs`. Many links
  // are built on every core at once: `kindAttrs` may read the observe's links and topology, and use the session's
  // lazy listings (ownedNft, qdiscs, remoteLink, vlanTable), its netlink sockets and observeFailed, which are safe
  // to share; nothing else of the session.
  void observeLinks(Observation& obs, const KindOps& row, bool (*matches)(const LinkInfo&),
                    void (*kindAttrs)(LinuxSession&, const LinkInfo&, Attrs&));
  // During observe: a link of this namespace by ifindex; every link.
  const LinkInfo* linkAt(int index) const;
  const std::unordered_map<int, LinkInfo>& links() const { return links_; }
  // vnetplan's own nftables tables (names starting "vnp-"), listed once per observe (lazily: a namespace without
  // Networks or port policies costs one listing only when asked), handles stripped. nftError(): why the listing
  // failed ("" when it did not).
  const std::vector<Json>& ownedNft();
  const std::string& nftError() {
    (void)ownedNft();
    return nftError_;
  }
  bool hasNftTable(const std::string& family, const std::string& name) {
    (void)ownedNft();
    return nftTables_.count(family + " " + name) != 0;
  }
  void setNftTable(const std::string& family, const std::string& name, bool exists) {
    if (exists) nftTables_.insert(family + " " + name);
    else nftTables_.erase(family + " " + name);
  }
  // Every nftables change of an apply's steps is staged here and committed by flush() in one batch (one
  // transaction: all of the target's tables change, or none does). `entries` is the whole table in `nft -j list`
  // shape (the "table" entry first); none means no table. A later step's stage of the same table replaces an
  // earlier one. Rules name interfaces by name (iifname/oifname), so committing them after the links changed is
  // fine.
  void stageNftTable(const std::string& family, const std::string& name, std::vector<Json> entries);
  // Whether the table exists once the staged changes are committed (the committed state if none is staged).
  bool nftTableAfterFlush(const std::string& family, const std::string& name);
  Status flush() override;
  void discard() override { nftStaged_.clear(); }
  // Root TBF and HTB qdiscs by ifindex (shaping.h), dumped once per observe when asked. A failed dump leaves the
  // map empty and is an observe error (observeError()).
  const std::map<int, Json>& qdiscs();
  // During observe: what a kind hook could not read. The observe then fails with it instead of reporting the
  // object as if that part were absent (a missing qdisc would plan its re-creation).
  void observeFailed(const std::string& what, const std::string& detail) {
    std::lock_guard<std::mutex> lock(observeErrorMu_);
    if (observeError_.empty()) observeError_ = what + ": " + detail;
  }
  const std::string& observeError() const { return observeError_; }
  // During observe: the addresses of a link (CIDR text), or null.
  const std::vector<std::string>* addressesOf(int index) const {
    auto it = addrs_.find(index);
    return it == addrs_.end() ? nullptr : &it->second;
  }
  // How the links relate (uplinks, port groups, VLAN tables): from the last observe, kept current by the hooks.
  Topology& topo() { return topo_; }
  // The VLAN tables of the namespace's bridges (dumped now if the last observe had no reason to).
  Result<std::map<int, PortVlans>*> vlanTable();
  // The switch, port group and VLAN attributes of a link that may be a bridge port (every Port row has them).
  void attachmentAttrs(const LinkInfo& link, Attrs& a) const;
  // During observe: a link in the namespace known here as `nsid`. The netns name is "nsid:N" when no
  // /run/netns entry is that namespace; `link` is null when the link was not found there.
  struct RemoteLink {
    std::string netns;
    const LinkInfo* link = nullptr;
  };
  RemoteLink remoteLink(int32_t nsid, int index);

 private:
  LinuxSession() = default;
  Status ensureNamespace();

  std::string target_;
  std::string netns_;
  bool createPending_ = false;  // createNetns: true and the namespace does not exist yet
  Fd nsFd_;
  std::unique_ptr<NlSocket> nl_;
  std::unordered_map<std::string, int> index_;
  int nextIndex_ = 0;  // above every ifindex of the namespace the session knows of (0: none known)
  std::map<std::string, Fd> netnsFds_;
  std::map<std::string, std::unique_ptr<NlSocket>> foreignSockets_;

  // Per-observe state. The lazy listings below are filled on first use under lazyMu_ (observeLinks builds
  // objects on several threads); once filled they are only read until the next observe.
  std::recursive_mutex lazyMu_;
  std::mutex observeErrorMu_;
  std::unordered_map<int, LinkInfo> links_;
  std::map<int, std::vector<std::string>> addrs_;
  std::optional<std::map<int32_t, std::string>> nsidNames_;
  std::map<int32_t, std::unordered_map<int, LinkInfo>> remoteLinks_;
  Topology topo_;
  std::optional<std::vector<Json>> nftOwned_;
  std::set<std::string> nftTables_;
  std::string nftError_;
  std::optional<std::map<int, Json>> qdiscs_;
  std::string observeError_;
  // Staged nftables tables by "family name" (empty: delete), for flush().
  std::map<std::string, std::vector<Json>> nftStaged_;
};

}  // namespace vnetplan::lnx
