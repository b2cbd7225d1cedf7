#include "providers/linux/nft.h"

#include <nftables/libnftables.h>

#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <netlink/msg.h>

#include <memory>
#include <string_view>

#include "base/dynlib.h"
#include "base/netlink.h"
#include "base/netns.h"

namespace vnetplan::lnx {

namespace {

// libnftables is opened on the first listing or change (base/dynlib.h): most observes never need it.
#define NFT_FUNCTIONS(X)                                                                                      \
  X(nft_ctx_new) X(nft_ctx_free) X(nft_ctx_output_set_flags) X(nft_ctx_buffer_output) X(nft_ctx_buffer_error) \
  X(nft_run_cmd_from_buffer) X(nft_ctx_get_output_buffer) X(nft_ctx_get_error_buffer)
VNP_DYNLIB_TABLE(Nft, "libnftables.so.1", NFT_FUNCTIONS)

struct CtxFree {
  void operator()(nft_ctx* c) const { Nft::get().nft_ctx_free(c); }
};

}  // namespace

Result<std::string> nftRun(int nsFd, const Json& batch) {
  std::string out, error;
  const std::string text = batch.dump();
  // The context's netlink socket belongs to the namespace of the thread that opens it: the whole run happens on
  // runInNetns' thread.
  const Nft& nft = Nft::get();
  if (!nft.error.empty()) return err("nftables: " + nft.error);
  Status st = runInNetns(nsFd, [&]() -> Status {
    std::unique_ptr<nft_ctx, CtxFree> ctx(nft.nft_ctx_new(NFT_CTX_DEFAULT));
    if (!ctx) return err("nftables: cannot create a context");
    nft.nft_ctx_output_set_flags(ctx.get(), NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE);
    if (nft.nft_ctx_buffer_output(ctx.get()) != 0 || nft.nft_ctx_buffer_error(ctx.get()) != 0)
      return err("nftables: cannot buffer output");
    int rc = nft.nft_run_cmd_from_buffer(ctx.get(), text.c_str());
    if (const char* o = nft.nft_ctx_get_output_buffer(ctx.get())) out = o;
    if (const char* e = nft.nft_ctx_get_error_buffer(ctx.get())) error = e;
    if (rc != 0) {
      while (!error.empty() && (error.back() == '\n' || error.back() == ' ')) error.pop_back();
      return err("nftables: " + (error.empty() ? std::string("the batch was refused") : error));
    }
    return {};
  });
  if (!st.ok()) return st.error();
  return out;
}

Result<bool> nftHasTables(int nsFd, const std::string& prefix) {
  auto sock = NlSocket::openIn(nsFd, NETLINK_NETFILTER);
  if (!sock.ok()) return sock.error();
  NlMsg m = newMsg((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE, NLM_F_DUMP);
  nfgenmsg g{};
  g.nfgen_family = AF_UNSPEC;
  g.version = NFNETLINK_V0;
  if (!m || nlmsg_append(m.get(), &g, sizeof g, NLMSG_ALIGNTO) < 0) return err("out of memory");
  bool found = false;
  NlOutcome o = (*sock)->dump(m.get(), [&](const nlmsghdr* h) {
    if (h->nlmsg_type != ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWTABLE)) return;
    nlattr* tb[NFTA_TABLE_MAX + 1] = {};
    if (nlmsg_parse(const_cast<nlmsghdr*>(h), sizeof(nfgenmsg), tb, NFTA_TABLE_MAX, nullptr) < 0 || !tb[NFTA_TABLE_NAME])
      return;
    const char* name = nla_get_string(tb[NFTA_TABLE_NAME]);
    if (name && std::string_view(name).substr(0, prefix.size()) == prefix) found = true;
  }, [&] { found = false; });
  if (!o.ok()) return err("nftables: list tables: " + o.message);
  return found;
}

Result<std::vector<Json>> nftListOwned(int nsFd, const std::string& prefix) {
  auto text = nftRun(nsFd, Json{{"nftables", Json::array({Json{{"list", Json{{"ruleset", nullptr}}}}})}});
  if (!text.ok()) return text.error();
  std::vector<Json> out;
  Json doc = Json::parse(*text, nullptr, false);
  if (doc.is_discarded() || !doc.contains("nftables") || !doc["nftables"].is_array())
    return err("nftables: the ruleset listing is not the JSON expected");
  for (auto& e : doc["nftables"]) {
    if (!e.is_object() || e.size() != 1) continue;
    const Json& body = e.begin().value();
    const std::string key = e.begin().key();
    std::string table = key == "table" ? body.value("name", "") : body.value("table", "");
    if (key != "table" && key != "chain" && key != "rule") continue;
    if (table.rfind(prefix, 0) != 0) continue;
    out.push_back(e);
  }
  return out;
}

Json nftStripHandles(Json entry) {
  if (entry.is_object())
    for (auto& [k, v] : entry.items()) {
      if (v.is_object()) {
        v.erase("handle");
        v.erase("index");
      }
    }
  return entry;
}

}  // namespace vnetplan::lnx
