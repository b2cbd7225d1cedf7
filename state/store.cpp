// The typed state store over a Backend.
//
// Documents (JSON, each with "formatVersion": 1; a newer version is refused, never misread):
//   targets/<t>/state.json                  TargetState
//   targets/<t>/generations/<n>.json        Generation n (zero-padded so that a listing sorts)
//   targets/<t>/journal.json                Journal of the apply/rollback in progress
//   targets/<t>/journal-progress.json       How far it got since (stepsDone, status), for one write of journal.json
//   targets/<t>/damage.json                 Damage left by a rollback that could not restore everything
// <t> is the target name with '/', '%', control bytes and a leading '.' percent-encoded, so that any name
// is exactly one key component (the backend then maps components to file names safely).
#include "state/store.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <set>

#include "base/crashpoint.h"
#include "base/random.h"
#include "model/codec.h"
#include "state/backends.h"
#include "state/decoded_cache.h"
#include "state/percent.h"

namespace vnetplan::state {
namespace {

constexpr int kFormatVersion = 1;
constexpr int kGenerationDigits = 8;

// A target name is one key component: '/', '%', control bytes and a leading '.' are encoded.
bool keepInKey(unsigned char c, size_t i) { return !(c == '/' || c == '%' || c < 0x20 || c == 0x7f || (i == 0 && c == '.')); }

std::string encodeTarget(const std::string& t) { return percentEncode(t, keepInKey); }
std::optional<std::string> decodeTarget(const std::string& enc) { return percentDecode(enc, keepInKey); }

Result<std::string> targetDir(const std::string& target) {
  if (target.empty()) return err("empty target name");
  return "targets/" + encodeTarget(target) + "/";
}

}  // namespace

std::optional<std::string> targetNameProblem(const std::string& target) {
  const size_t bytes = fileBackendNameBytes(encodeTarget(target));
  if (bytes <= kFileBackendMaxNameBytes) return std::nullopt;
  return "the name takes " + std::to_string(bytes) + " bytes as a state file name, more than the file system's " +
         std::to_string(kFileBackendMaxNameBytes) + " (letters, digits, '-', '_' and '.' take one byte, any other " +
         "character three per UTF-8 byte); use a shorter name";
}

namespace {

std::string generationFile(int64_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%0*lld.json", kGenerationDigits, static_cast<long long>(n));
  return buf;
}

// "targets/hv01/state.json" as the user can find it: a path for file://, the URL otherwise.
std::string describe(Backend& b, const std::string& key) {
  std::string url = b.url();
  if (url.rfind("file://", 0) == 0) url = url.substr(7);
  if (!url.empty() && url.back() == '/') url.pop_back();
  return url + "/" + key;
}

Status writeDoc(Backend& b, const std::string& key, Json doc) {
  doc["formatVersion"] = kFormatVersion;
  std::string bytes;
  try {
    bytes = doc.dump(2) + "\n";
  } catch (const Json::exception& e) {  // e.g. a string that is not valid UTF-8
    return err("cannot encode " + describe(b, key) + ": " + e.what());
  }
  return b.write(key, bytes);
}

// A state document's bytes as JSON, with its formatVersion checked.
Result<Json> parseDoc(Backend& b, const std::string& key, const std::string& bytes) {
  const std::string where = describe(b, key);
  Json j;
  try {
    j = Json::parse(bytes);
  } catch (const Json::exception& e) {
    return err("state file " + where + " is corrupt (not valid JSON: " + e.what() +
               "); refusing to treat it as empty — restore it from a backup or move it aside");
  }
  if (!j.is_object())
    return err("state file " + where + " is corrupt (not a JSON object); refusing to treat it as empty");
  auto v = j.find("formatVersion");
  if (v == j.end() || !v->is_number_integer())
    return err("state file " + where +
               " is corrupt (no integer formatVersion); refusing to treat it as empty");
  auto version = v->get<int64_t>();
  if (version > kFormatVersion)
    return err("state file " + where + " has formatVersion " + std::to_string(version) +
               ", written by a newer vnetplan (this one understands up to " + std::to_string(kFormatVersion) +
               "); upgrade vnetplan");
  if (version < 1)
    return err("state file " + where + " has invalid formatVersion " + std::to_string(version));
  return j;
}

// Reads, parses and version-checks a document; nullopt when absent. Corruption is an error naming the file.
Result<std::optional<Json>> readDoc(Backend& b, const std::string& key) {
  auto bytes = b.read(key);
  if (!bytes) return bytes.error();
  if (!bytes->has_value()) return std::optional<Json>();
  auto j = parseDoc(b, key, **bytes);
  if (!j) return j.error();
  return std::optional<Json>(std::move(*j));
}

Error corrupt(Backend& b, const std::string& key, const std::string& why) {
  return err("state file " + describe(b, key) + " is corrupt (" + why + "); refusing to use it");
}

// ---- encoders/decoders (decoders may throw Json::exception; callers turn that into "corrupt") -----------

Json ownedToJson(const std::map<Address, OwnedObject>& owned) {
  Json arr = Json::array();
  for (const auto& [addr, o] : owned) {
    Json e{{"address", toJson(o.addr)},
           {"provider", o.provider},
           {"lastApplied", flatJson(o.lastApplied)},
           {"sinceGeneration", o.sinceGeneration}};
    if (!o.identity.empty()) e["identity"] = toJson(o.identity);
    if (o.adopted) {
      e["adopted"] = true;
      e["preAdoption"] = o.preAdoption ? flatJson(*o.preAdoption) : Json(nullptr);
      if (o.deleteOnRelease) e["deleteOnRelease"] = true;
    }
    arr.push_back(std::move(e));
  }
  return arr;
}

Result<std::map<Address, OwnedObject>> ownedFromJson(const Json& arr) {
  if (!arr.is_array()) return err("'owned' is not a list");
  std::map<Address, OwnedObject> out;
  for (const auto& e : arr) {
    OwnedObject o;
    auto a = addressFromJson(e.at("address"));
    if (!a) return err("owned object: " + a.error().message);
    o.addr = *a;
    o.provider = e.at("provider").get<std::string>();
    const Json& la = e.at("lastApplied");
    if (!la.is_object()) return err("owned object " + o.addr.str() + ": lastApplied is not an object");
    o.lastApplied = attrsFromFlatJson(la);
    o.sinceGeneration = e.value("sinceGeneration", int64_t{0});
    o.identity = identityFromJson(e.value("identity", Json()));
    o.adopted = e.value("adopted", false);
    if (auto pa = e.find("preAdoption"); pa != e.end() && pa->is_object()) o.preAdoption = attrsFromFlatJson(*pa);
    o.deleteOnRelease = e.value("deleteOnRelease", false);
    out[o.addr] = std::move(o);
  }
  return out;
}

struct StatusName {
  JournalStatus status;
  const char* name;
};
constexpr StatusName kStatusNames[] = {
    {JournalStatus::Applying, "applying"},
    {JournalStatus::RollingBack, "rolling-back"},
    {JournalStatus::AwaitingConfirm, "awaiting-confirm"},
    {JournalStatus::Committing, "committing"},
    {JournalStatus::Failed, "failed"},
};

std::optional<JournalStatus> parseJournalStatus(const std::string& s) {
  for (const auto& n : kStatusNames)
    if (s == n.name) return n.status;
  return std::nullopt;
}

// Runs a decoder, turning JSON type/shape exceptions and decoder errors into "file is corrupt".
template <typename T, typename F>
Result<T> decode(Backend& b, const std::string& key, F&& f) {
  try {
    Result<T> r = f();
    if (!r) return corrupt(b, key, r.error().message);
    return r;
  } catch (const Json::exception& e) {
    return corrupt(b, key, e.what());
  }
}

Json generationToJson(const std::string& target, const Generation& g) {
  return Json{{"target", target},
              {"number", g.number},
              {"created", g.created},
              {"operation", g.operation},
              {"manifestsDigest", g.manifestsDigest},
              {"gitCommit", g.gitCommit},
              {"summary", g.summary},
              {"owned", ownedToJson(g.owned)},
              {"connection", g.connection}};
}

Result<Generation> generationFromJson(const Json& j) {
  Generation g;
  g.number = j.at("number").get<int64_t>();
  g.created = j.value("created", std::string());
  g.operation = j.value("operation", std::string());
  g.manifestsDigest = j.value("manifestsDigest", std::string());
  g.gitCommit = j.value("gitCommit", std::string());
  g.summary = j.value("summary", std::string());
  g.connection = j.value("connection", std::string());
  auto owned = ownedFromJson(j.at("owned"));
  if (!owned) return owned.error();
  g.owned = std::move(*owned);
  return g;
}

}  // namespace

const char* journalStatusName(JournalStatus s) {
  for (const auto& n : kStatusNames)
    if (n.status == s) return n.name;
  return "unknown";
}

Store::Store(std::unique_ptr<Backend> backend) : backend_(std::move(backend)) {}

Result<std::vector<std::string>> Store::targets() {
  auto keys = backend_->list("targets/");
  if (!keys) return keys.error();
  std::set<std::string> names;
  for (const auto& k : *keys) {
    // targets/<enc>/<something>
    size_t a = k.find('/');
    size_t b = a == std::string::npos ? std::string::npos : k.find('/', a + 1);
    if (b == std::string::npos) continue;
    auto name = decodeTarget(k.substr(a + 1, b - a - 1));
    if (name) names.insert(*name);
  }
  return std::vector<std::string>(names.begin(), names.end());
}

Result<TargetState> Store::load(const std::string& target) {
  auto dir = targetDir(target);
  if (!dir) return dir.error();
  const std::string key = *dir + "state.json";
  auto bytes = backend_->read(key);
  if (!bytes) return bytes.error();
  if (!bytes->has_value()) {
    TargetState empty;
    empty.target = target;
    return empty;
  }
  // The file is the truth and is read every time; decoding exactly these bytes again is skipped when cached.
  const std::string cacheKey = decodedcache::keyOf(**bytes);
  if (auto hit = decodedcache::load(cacheKey, target)) return std::move(*hit);
  auto doc = parseDoc(*backend_, key, **bytes);
  if (!doc) return doc.error();
  const Json& j = *doc;
  auto st = decode<TargetState>(*backend_, key, [&]() -> Result<TargetState> {
    TargetState st;
    st.target = j.at("target").get<std::string>();
    if (st.target != target) return err("it belongs to target '" + st.target + "', not '" + target + "'");
    st.generation = j.at("generation").get<int64_t>();
    auto owned = ownedFromJson(j.at("owned"));
    if (!owned) return owned.error();
    st.owned = std::move(*owned);
    st.connection = j.value("connection", std::string());
    return st;
  });
  if (st) decodedcache::store(cacheKey, *st);
  return st;
}

Status Store::save(const TargetState& st) {
  crashPoint("state write");
  auto dir = targetDir(st.target);
  if (!dir) return dir.error();
  Json j{{"target", st.target}, {"generation", st.generation}, {"owned", ownedToJson(st.owned)}};
  if (!st.connection.empty()) j["connection"] = st.connection;
  return writeDoc(*backend_, *dir + "state.json", std::move(j));
}

Status Store::addGeneration(const std::string& target, const Generation& g) {
  crashPoint("generation write");
  auto dir = targetDir(target);
  if (!dir) return dir.error();
  if (g.number <= 0) return err("generation numbers start at 1 (got " + std::to_string(g.number) + ")");
  return writeDoc(*backend_, *dir + "generations/" + generationFile(g.number), generationToJson(target, g));
}

Status Store::removeGeneration(const std::string& target, int64_t number) {
  crashPoint("generation remove");
  auto dir = targetDir(target);
  if (!dir) return dir.error();
  if (number <= 0) return {};
  return backend_->remove(*dir + "generations/" + generationFile(number));
}

Result<std::vector<Generation>> Store::history(const std::string& target) {
  auto dir = targetDir(target);
  if (!dir) return dir.error();
  const std::string prefix = *dir + "generations/";
  auto keys = backend_->list(prefix);
  if (!keys) return keys.error();
  std::vector<Generation> out;
  for (const auto& key : *keys) {
    std::string file = key.substr(prefix.size());
    // Only "<digits>.json" directly in generations/ is ours; anything else is not a generation.
    if (file.size() <= 5 || file.compare(file.size() - 5, 5, ".json") != 0) continue;
    std::string digits = file.substr(0, file.size() - 5);
    if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) continue;
    auto doc = readDoc(*backend_, key);
    if (!doc) return doc.error();
    if (!doc->has_value()) continue;  // removed meanwhile
    auto g = decode<Generation>(*backend_, key, [&] { return generationFromJson(**doc); });
    if (!g) return g.error();
    if (std::to_string(g->number) != digits.substr(std::min(digits.find_first_not_of('0'), digits.size())))
      return corrupt(*backend_, key, "it records generation " + std::to_string(g->number));
    out.push_back(std::move(*g));
  }
  std::sort(out.begin(), out.end(),
            [](const Generation& a, const Generation& b) { return a.number < b.number; });
  return out;
}

Result<std::optional<Generation>> Store::generation(const std::string& target, int64_t number) {
  auto dir = targetDir(target);
  if (!dir) return dir.error();
  if (number <= 0) return std::optional<Generation>();
  const std::string key = *dir + "generations/" + generationFile(number);
  auto doc = readDoc(*backend_, key);
  if (!doc) return doc.error();
  if (!doc->has_value()) return std::optional<Generation>();
  auto g = decode<Generation>(*backend_, key, [&] { return generationFromJson(**doc); });
  if (!g) return g.error();
  if (g->number != number)
    return corrupt(*backend_, key, "it records generation " + std::to_string(g->number));
  return std::optional<Generation>(std::move(*g));
}

Result<std::optional<Journal>> Store::journal(const std::string& target) {
  auto dir = targetDir(target);
  if (!dir) return dir.error();
  const std::string key = *dir + "journal.json";
  auto doc = readDoc(*backend_, key);
  if (!doc) return doc.error();
  if (!doc->has_value()) return std::optional<Journal>();
  const Json& j = **doc;
  auto r = decode<Journal>(*backend_, key, [&]() -> Result<Journal> {
    Journal jr;
    jr.id = j.at("id").get<std::string>();
    jr.target = j.at("target").get<std::string>();
    if (jr.target != target) return err("it belongs to target '" + jr.target + "', not '" + target + "'");
    auto spec = targetFromJson(j.at("targetSpec"));
    if (!spec) return err("targetSpec: " + spec.error().message);
    jr.targetSpec = std::move(*spec);
    jr.provider = j.at("provider").get<std::string>();
    auto statusName = j.at("status").get<std::string>();
    auto status = parseJournalStatus(statusName);
    if (!status) return err("unknown status '" + statusName + "'");
    jr.status = *status;
    jr.operation = j.at("operation").get<std::string>();
    jr.started = j.value("started", std::string());
    jr.pid = j.value("pid", int64_t{0});
    for (const auto& e : j.at("preImage")) {
      auto a = addressFromJson(e.at("address"));
      if (!a) return err("preImage: " + a.error().message);
      const Json& attrs = e.at("attrs");
      if (attrs.is_null()) {
        jr.preImage[*a] = std::nullopt;
      } else {
        if (!attrs.is_object())
          return err("preImage of " + a->str() + ": attrs is neither null nor an object");
        jr.preImage[*a] = attrsFromFlatJson(attrs);
      }
    }
    for (const auto& e : j.at("preOwned")) {
      auto a = addressFromJson(e.at("address"));
      if (!a) return err("preOwned: " + a.error().message);
      jr.preOwned[*a] = e.at("owned").get<bool>();
    }
    for (const auto& e : j.at("steps")) {
      auto s = stepFromJson(e);
      if (!s) return err("step: " + s.error().message);
      jr.steps.push_back(std::move(*s));
    }
    if (auto ps = j.find("preState"); ps != j.end() && ps->is_object()) {
      jr.preState.target = target;
      jr.preState.generation = ps->at("generation").get<int64_t>();
      jr.preState.connection = ps->value("connection", std::string());
      auto owned = ownedFromJson(ps->at("owned"));
      if (!owned) return err("preState: " + owned.error().message);
      jr.preState.owned = std::move(*owned);
    } else {
      jr.preState.target = target;  // a journal of an older vnetplan: ownership from preOwned only
    }
    if (auto c = j.find("commit"); c != j.end() && c->is_object()) {
      auto g = generationFromJson(*c);
      if (!g) return err("commit: " + g.error().message);
      jr.commit = std::move(*g);
    }
    jr.watchdogPid = j.value("watchdogPid", int64_t{0});
    auto done = j.at("stepsDone").get<int64_t>();
    if (done < 0 || static_cast<size_t>(done) > jr.steps.size())
      return err("stepsDone " + std::to_string(done) + " is outside 0.." + std::to_string(jr.steps.size()));
    jr.stepsDone = static_cast<size_t>(done);
    jr.confirmDeadline = j.value("confirmDeadline", std::string());
    jr.error = j.value("error", std::string());
    return jr;
  });
  if (!r) return r.error();
  // Progress recorded since this journal.json was written (its write id) applies; any other is left over.
  const std::string progressKey = *dir + "journal-progress.json";
  auto progress = readDoc(*backend_, progressKey);
  if (!progress) return progress.error();
  const std::string writeId = j.value("writeId", std::string());
  if (progress->has_value() && !writeId.empty()) {
    const Json& p = **progress;
    if (p.value("writeId", std::string()) == writeId && p.value("id", std::string()) == r->id) {
      auto merged = decode<Journal>(*backend_, progressKey, [&]() -> Result<Journal> {
        Journal jr = *r;
        auto done = p.at("stepsDone").get<int64_t>();
        if (done < 0 || static_cast<size_t>(done) > jr.steps.size())
          return err("stepsDone " + std::to_string(done) + " is outside 0.." + std::to_string(jr.steps.size()));
        jr.stepsDone = std::max(jr.stepsDone, static_cast<size_t>(done));
        auto statusName = p.at("status").get<std::string>();
        auto status = parseJournalStatus(statusName);
        if (!status) return err("unknown status '" + statusName + "'");
        jr.status = *status;
        return jr;
      });
      if (!merged) return merged.error();
      return std::optional<Journal>(std::move(*merged));
    }
  }
  return std::optional<Journal>(std::move(*r));
}

Status Store::writeJournal(const Journal& jr) {
  crashPoint("journal write");
  auto dir = targetDir(jr.target);
  if (!dir) return dir.error();
  Json pre = Json::array();
  for (const auto& [addr, attrs] : jr.preImage)
    pre.push_back(Json{{"address", toJson(addr)}, {"attrs", attrs ? flatJson(*attrs) : Json(nullptr)}});
  Json preOwned = Json::array();
  for (const auto& [addr, owned] : jr.preOwned)
    preOwned.push_back(Json{{"address", toJson(addr)}, {"owned", owned}});
  Json steps = Json::array();
  for (const auto& s : jr.steps) steps.push_back(toJson(s));
  Json j{{"id", jr.id},
         {"target", jr.target},
         {"targetSpec", toJson(jr.targetSpec)},
         {"provider", jr.provider},
         {"status", journalStatusName(jr.status)},
         {"operation", jr.operation},
         {"started", jr.started},
         {"pid", jr.pid},
         {"preImage", std::move(pre)},
         {"preOwned", std::move(preOwned)},
         {"steps", std::move(steps)},
         {"stepsDone", static_cast<int64_t>(jr.stepsDone)},
         {"confirmDeadline", jr.confirmDeadline},
         {"watchdogPid", jr.watchdogPid},
         {"error", jr.error},
         {"preState", Json{{"generation", jr.preState.generation},
                           {"owned", ownedToJson(jr.preState.owned)},
                           {"connection", jr.preState.connection}}}};
  if (jr.commit) j["commit"] = generationToJson(jr.target, *jr.commit);
  const std::string writeId = randomHex(8);
  j["writeId"] = writeId;
  Status st = writeDoc(*backend_, *dir + "journal.json", std::move(j));
  std::lock_guard<std::mutex> lock(mu_);
  if (st) journalWrites_[jr.target] = JournalWrite{writeId, jr.id, false};
  else journalWrites_.erase(jr.target);
  return st;
}

Status Store::writeJournalProgress(const Journal& jr) {
  std::string writeId;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = journalWrites_.find(jr.target);
    if (it != journalWrites_.end() && it->second.journalId == jr.id) {
      writeId = it->second.writeId;
      it->second.progress = true;
    }
  }
  if (writeId.empty()) return writeJournal(jr);
  crashPoint("journal progress write");
  auto dir = targetDir(jr.target);
  if (!dir) return dir.error();
  return writeDoc(*backend_, *dir + "journal-progress.json",
                  Json{{"id", jr.id},
                       {"writeId", writeId},
                       {"stepsDone", static_cast<int64_t>(jr.stepsDone)},
                       {"status", journalStatusName(jr.status)}});
}

Status Store::clearJournal(const std::string& target) {
  crashPoint("journal remove");
  auto dir = targetDir(target);
  if (!dir) return dir.error();
  if (Status st = backend_->remove(*dir + "journal.json"); !st) return st;
  // Progress of a journal that is gone never applies again (write ids are not reused); this one's is removed.
  bool wroteProgress = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = journalWrites_.find(target);
    wroteProgress = it != journalWrites_.end() && it->second.progress;
    if (it != journalWrites_.end()) journalWrites_.erase(it);
  }
  if (wroteProgress) (void)backend_->remove(*dir + "journal-progress.json");
  return {};
}

Status Store::recordDamage(const Damage& d) {
  crashPoint("damage write");
  auto dir = targetDir(d.target);
  if (!dir) return dir.error();
  Json j{{"target", d.target}, {"created", d.created}, {"unrestored", d.unrestored}};
  return writeDoc(*backend_, *dir + "damage.json", std::move(j));
}

Result<std::optional<Damage>> Store::damage(const std::string& target) {
  auto dir = targetDir(target);
  if (!dir) return dir.error();
  const std::string key = *dir + "damage.json";
  auto doc = readDoc(*backend_, key);
  if (!doc) return doc.error();
  if (!doc->has_value()) return std::optional<Damage>();
  const Json& j = **doc;
  auto r = decode<Damage>(*backend_, key, [&]() -> Result<Damage> {
    Damage d;
    d.target = j.at("target").get<std::string>();
    if (d.target != target) return err("it belongs to target '" + d.target + "', not '" + target + "'");
    d.created = j.value("created", std::string());
    d.unrestored = j.at("unrestored").get<std::vector<std::string>>();
    return d;
  });
  if (!r) return r.error();
  return std::optional<Damage>(std::move(*r));
}

Status Store::clearDamage(const std::string& target) {
  crashPoint("damage remove");
  auto dir = targetDir(target);
  if (!dir) return dir.error();
  return backend_->remove(*dir + "damage.json");
}

Status Store::confirm(const std::string& target, const std::string& journalId) {
  crashPoint("confirm write");
  auto dir = targetDir(target);
  if (!dir) return dir.error();
  Json doc{{"formatVersion", 1}, {"journal", journalId}, {"confirmed", nowRfc3339()}};
  return backend_->write(*dir + "confirm.json", doc.dump(2) + "\n");
}

Result<bool> Store::confirmed(const std::string& target, const std::string& journalId) {
  auto dir = targetDir(target);
  if (!dir) return dir.error();
  auto bytes = backend_->read(*dir + "confirm.json");
  if (!bytes) return bytes.error();
  if (!bytes->has_value()) return false;
  Json doc = Json::parse(**bytes, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return err("state file confirm.json of target " + target + " is corrupt");
  return doc.value("journal", "") == journalId;
}

Status Store::clearConfirm(const std::string& target) {
  auto dir = targetDir(target);
  if (!dir) return dir.error();
  return backend_->remove(*dir + "confirm.json");
}

Result<std::optional<LockInfo>> Store::lockHolder(const std::string& target) {
  auto all = backend_->locks();
  if (!all) return all.error();
  for (const auto& l : *all)
    if (l.held && l.info.name == "target/" + target) return std::optional<LockInfo>(l.info);
  return std::optional<LockInfo>();
}

Result<std::unique_ptr<Lock>> Store::lockTarget(const std::string& target, const std::string& operation,
                                                std::chrono::milliseconds wait) {
  if (target.empty()) return err("empty target name");
  LockInfo info;
  info.name = "target/" + target;
  info.operation = operation;
  info.created = nowRfc3339();
  info.pid = ::getpid();
  return backend_->lock(info, wait);  // the backend fills in id and owner
}

}  // namespace vnetplan::state
