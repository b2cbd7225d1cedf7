#include "providers/linux/nft.h"

#include <nftables/libnftables.h>

#include <memory>

#include "base/netns.h"

namespace vnetplan::lnx {

namespace {

struct CtxFree {
  void operator()(nft_ctx* c) const { nft_ctx_free(c); }
};

}  // namespace

Result<std::string> nftRun(int nsFd, const Json& batch) {
  std::string out, error;
  const std::string text = batch.dump();
  // The context's netlink socket belongs to the namespace of the thread that opens it: the whole run happens on
  // runInNetns' thread.
  Status st = runInNetns(nsFd, [&]() -> Status {
    std::unique_ptr<nft_ctx, CtxFree> ctx(nft_ctx_new(NFT_CTX_DEFAULT));
    if (!ctx) return err("nftables: cannot create a context");
    nft_ctx_output_set_flags(ctx.get(), NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE);
    if (nft_ctx_buffer_output(ctx.get()) != 0 || nft_ctx_buffer_error(ctx.get()) != 0)
      return err("nftables: cannot buffer output");
    int rc = nft_run_cmd_from_buffer(ctx.get(), text.c_str());
    if (const char* o = nft_ctx_get_output_buffer(ctx.get())) out = o;
    if (const char* e = nft_ctx_get_error_buffer(ctx.get())) error = e;
    if (rc != 0) {
      while (!error.empty() && (error.back() == '\n' || error.back() == ' ')) error.pop_back();
      return err("nftables: " + (error.empty() ? std::string("the batch was refused") : error));
    }
    return {};
  });
  if (!st.ok()) return st.error();
  return out;
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
