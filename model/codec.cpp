#include "model/codec.h"


#include <cstdio>

#include "base/sha256.h"

namespace vnetplan {

Json toJson(const Address& a) { return a.str(); }

Result<Address> addressFromJson(const Json& j) {
  if (!j.is_string()) return err("address: expected a string");
  auto a = Address::parse(j.get<std::string>());
  if (!a) return err("address: malformed '" + j.get<std::string>() + "' (want TARGET/Kind/name)");
  return *a;
}

Json flatJson(const Attrs& a) {
  Json out = Json::object();
  for (const auto& [k, v] : a.values()) out[k] = v;
  return out;
}

Attrs attrsFromFlatJson(const Json& j) {
  Attrs a;
  if (!j.is_object()) return a;
  for (auto it = j.begin(); it != j.end(); ++it) a.set(it.key(), it.value());
  return a;
}

Json toJson(const Target& t) {
  Json labels = Json::object();
  for (const auto& [k, v] : t.labels) labels[k] = v;
  return Json{{"name", t.name}, {"provider", t.provider}, {"spec", flatJson(t.spec)}, {"labels", labels}};
}

Result<Target> targetFromJson(const Json& j) {
  if (!j.is_object() || !j.contains("name") || !j["name"].is_string() || !j.contains("provider") ||
      !j["provider"].is_string())
    return err("target: expected {name, provider, spec}");
  Target t;
  t.name = j["name"].get<std::string>();
  t.provider = j["provider"].get<std::string>();
  if (j.contains("spec")) t.spec = attrsFromFlatJson(j["spec"]);
  if (j.contains("labels") && j["labels"].is_object())
    for (auto it = j["labels"].begin(); it != j["labels"].end(); ++it)
      if (it.value().is_string()) t.labels[it.key()] = it.value().get<std::string>();
  return t;
}

Json toJson(const ProviderIdentity& id) {
  if (id.empty()) return nullptr;
  return Json{{"id", id.id}, {"revision", id.revision}};
}

ProviderIdentity identityFromJson(const Json& j) {
  ProviderIdentity id;
  if (!j.is_object()) return id;
  if (auto v = j.find("id"); v != j.end() && v->is_string()) id.id = v->get<std::string>();
  if (auto v = j.find("revision"); v != j.end() && v->is_string()) id.revision = v->get<std::string>();
  return id;
}

Json toJson(const Step& s) {
  Json j{{"address", s.addr.str()},
         {"action", stepActionName(s.action)},
         {"before", flatJson(s.before)},
         {"after", flatJson(s.after)},
         {"changed", s.changed}};
  if (!s.identity.empty()) j["identity"] = toJson(s.identity);
  return j;
}

Result<Step> stepFromJson(const Json& j) {
  if (!j.is_object()) return err("step: expected an object");
  Step s;
  auto addr = addressFromJson(j.value("address", Json()));
  if (!addr) return addr.error();
  s.addr = *addr;
  std::string action = j.value("action", "");
  if (action == "create") s.action = StepAction::Create;
  else if (action == "update") s.action = StepAction::Update;
  else if (action == "delete") s.action = StepAction::Delete;
  else return err("step: unknown action '" + action + "'");
  s.before = attrsFromFlatJson(j.value("before", Json::object()));
  s.after = attrsFromFlatJson(j.value("after", Json::object()));
  if (j.contains("changed") && j["changed"].is_array())
    for (const auto& c : j["changed"])
      if (c.is_string()) s.changed.push_back(c.get<std::string>());
  s.identity = identityFromJson(j.value("identity", Json()));
  return s;
}

// flatJson(a).dump() without building the object (a plan fingerprints every object it covers): the same bytes,
// so fingerprints in saved plans stay comparable across versions.
// Plain printable ASCII is written as it is; anything else (escapes, UTF-8, floats) goes through Json::dump,
// whose output this must equal byte for byte.
static void dumpString(const std::string& str, std::string& out) {
  for (unsigned char ch : str)
    if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\') {
      out += Json(str).dump();
      return;
    }
  out += '"';
  out += str;
  out += '"';
}

static void dumpValue(const Json& v, std::string& out) {
  switch (v.type()) {
    case Json::value_t::null: out += "null"; return;
    case Json::value_t::boolean: out += v.get<bool>() ? "true" : "false"; return;
    case Json::value_t::number_integer: out += std::to_string(v.get<int64_t>()); return;
    case Json::value_t::number_unsigned: out += std::to_string(v.get<uint64_t>()); return;
    case Json::value_t::string: dumpString(v.get_ref<const std::string&>(), out); return;
    case Json::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& e : v) {
        if (!first) out += ',';
        first = false;
        dumpValue(e, out);
      }
      out += ']';
      return;
    }
    case Json::value_t::object: {
      out += '{';
      bool first = true;
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!first) out += ',';
        first = false;
        dumpString(it.key(), out);
        out += ':';
        dumpValue(it.value(), out);
      }
      out += '}';
      return;
    }
    default: out += v.dump(); return;
  }
}

static std::string flatDump(const Attrs& a) {
  std::string out = "{";
  for (const auto& [k, v] : a.values()) {
    if (out.size() > 1) out += ',';
    dumpString(k, out);
    out += ':';
    dumpValue(v, out);
  }
  out += '}';
  return out;
}

std::string fingerprint(const ObservedObject* live) {
  if (!live) return "absent";
  if (live->identity.empty()) return fingerprint(&live->attrs);
  return sha256Hex(flatDump(live->attrs) + '\0' + live->identity.id + '\0' + live->identity.revision);
}

std::string fingerprint(const Attrs* live) {
  if (!live) return "absent";
  return sha256Hex(flatDump(*live));
}

std::string fingerprint(const std::optional<Attrs>& live) { return fingerprint(live ? &*live : nullptr); }

}  // namespace vnetplan
