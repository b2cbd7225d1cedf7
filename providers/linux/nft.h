// nftables through libnftables' JSON API, inside the target's network namespace. vnetplan keeps its rules in
// tables of its own (one per Network, `inet vnp-net-<network>`): it lists and replaces those, never anyone else's.
#pragma once
#include <string>
#include <vector>

#include "base/result.h"
#include "model/model.h"

namespace vnetplan::lnx {

// Runs one JSON command batch ({"nftables": [...]}) in the namespace `nsFd` (-1: the caller's): one netlink
// transaction, so it commits entirely or not at all. Returns what nft printed (JSON, for list commands).
Result<std::string> nftRun(int nsFd, const Json& batch);

// Whether any nftables table (of any family) in the namespace has a name starting with `prefix`: one netlink dump
// of the table names (NFT_MSG_GETTABLE), without libnftables, whose context and full listing cost far more. A
// namespace without such a table needs no listing.
Result<bool> nftHasTables(int nsFd, const std::string& prefix);

// The tables of `family` whose names start with `prefix`, as listed (JSON objects: "table", "chain", "rule"
// entries of those tables, handles included).
Result<std::vector<Json>> nftListOwned(int nsFd, const std::string& prefix);

// A rule or chain as compared by observe: the listing without handles.
Json nftStripHandles(Json entry);

}  // namespace vnetplan::lnx
