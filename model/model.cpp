#include "model/model.h"

#include <atomic>
#include "model/step.h"

#include <array>

namespace vnetplan {

namespace {
struct KindEntry {
  Kind kind;
  const char* name;
};
constexpr std::array<KindEntry, 10> kKinds{{
    {Kind::Target, "Target"},
    {Kind::Switch, "Switch"},
    {Kind::PortGroup, "PortGroup"},
    {Kind::Port, "Port"},
    {Kind::Network, "Network"},
    {Kind::Vpc, "Vpc"},
    {Kind::Subnet, "Subnet"},
    {Kind::SecurityGroup, "SecurityGroup"},
    {Kind::Route, "Route"},
    {Kind::Mirror, "Mirror"},
}};
}  // namespace

const char* kindName(Kind k) {
  for (const auto& e : kKinds)
    if (e.kind == k) return e.name;
  return "?";
}

std::optional<Kind> parseKind(const std::string& s) {
  for (const auto& e : kKinds)
    if (s == e.name) return e.kind;
  return std::nullopt;
}

const std::vector<Kind>& allKinds() {
  static const std::vector<Kind> kinds = [] {
    std::vector<Kind> v;
    for (const auto& e : kKinds) v.push_back(e.kind);
    return v;
  }();
  return kinds;
}

std::string Address::str() const { return target + "/" + kindName(kind) + "/" + name; }

std::optional<Address> Address::parse(const std::string& s) {
  auto a = s.find('/');
  if (a == std::string::npos) return std::nullopt;
  auto b = s.find('/', a + 1);
  if (b == std::string::npos) return std::nullopt;
  auto kind = parseKind(s.substr(a + 1, b - a - 1));
  if (!kind || a == 0 || b + 1 >= s.size()) return std::nullopt;
  return Address{s.substr(0, a), *kind, s.substr(b + 1)};
}

const Attrs::Map& Attrs::noValues() {
  static const Map kEmpty;
  return kEmpty;
}

Attrs::Map& Attrs::mut() {
  if (!values_) {
    values_ = std::make_shared<Map>();
  } else if (values_.use_count() > 1) {
    values_ = std::make_shared<Map>(*values_);
  } else {
    // The last other owner may have let go on another thread just now: see its reads before writing.
    std::atomic_thread_fence(std::memory_order_acquire);
  }
  return *values_;
}

const Json* Attrs::find(std::string_view path) const {
  const Map& m = values();
  auto it = m.find(path);
  return it == m.end() ? nullptr : &it->second;
}

Attrs Attrs::fromMap(Map m) {
  Attrs a;
  if (!m.empty()) a.values_ = std::make_shared<Map>(std::move(m));
  return a;
}

void Attrs::set(std::string_view path, Json v) {
  Map& m = mut();
  auto it = m.lower_bound(path);
  if (it != m.end() && it->first == path) it->second = std::move(v);
  else m.emplace_hint(it, std::string(path), std::move(v));
}

void Attrs::erase(std::string_view path) {
  if (!has(path)) return;
  Map& m = mut();
  m.erase(m.find(path));
}

std::optional<int64_t> Attrs::getInt(std::string_view path) const {
  const Json* v = find(path);
  if (!v || !v->is_number_integer()) return std::nullopt;
  return v->get<int64_t>();
}

std::optional<bool> Attrs::getBool(std::string_view path) const {
  const Json* v = find(path);
  if (!v || !v->is_boolean()) return std::nullopt;
  return v->get<bool>();
}

std::optional<std::string> Attrs::getString(std::string_view path) const {
  const Json* v = find(path);
  if (!v || !v->is_string()) return std::nullopt;
  return v->get<std::string>();
}

std::vector<std::string> Attrs::getStrings(std::string_view path) const {
  std::vector<std::string> out;
  const Json* v = find(path);
  if (!v || !v->is_array()) return out;
  for (const auto& e : *v)
    if (e.is_string()) out.push_back(e.get<std::string>());
  return out;
}

Attrs Attrs::subtree(const std::string& prefix) const {
  Attrs out;
  const Map& m = values();
  for (auto it = m.lower_bound(prefix); it != m.end() && it->first.rfind(prefix, 0) == 0; ++it) out.mut().insert(*it);
  return out;
}

Json Attrs::toJson() const {
  Json out = Json::object();
  for (const auto& [path, value] : values()) {
    Json* node = &out;
    size_t start = 0;
    while (true) {
      size_t dot = path.find('.', start);
      std::string key = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      if (dot == std::string::npos) {
        (*node)[key] = value;
        break;
      }
      Json& child = (*node)[key];
      if (!child.is_object()) child = Json::object();
      node = &child;
      start = dot + 1;
    }
  }
  return out;
}

static void flattenInto(const Json& j, const std::string& prefix, Attrs& out) {
  if (j.is_object() && !j.empty()) {
    for (auto it = j.begin(); it != j.end(); ++it)
      flattenInto(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(), out);
  } else if (!prefix.empty()) {
    out.set(prefix, j);
  }
}

Attrs Attrs::fromJson(const Json& j) {
  Attrs out;
  flattenInto(j, "", out);
  return out;
}

const Target* DesiredState::findTarget(const std::string& name) const {
  for (const auto& t : targets)
    if (t.name == name) return &t;
  return nullptr;
}

const char* stepActionName(StepAction a) {
  switch (a) {
    case StepAction::Create: return "create";
    case StepAction::Update: return "update";
    case StepAction::Delete: return "delete";
  }
  return "?";
}

}  // namespace vnetplan
