// The shape every provider's kinds take, in the spirit of systemd-networkd's NetDevVTable: one row of hooks per
// kind of object a provider manages (per Port type where types are different objects: a veth is not a tap), with
// observe / check / normalize / create / update / delete / describe. Adding a kind to a provider is one file with
// its hooks plus one row in the provider's table; TableProvider turns the table into the Provider the engine
// sees, so a provider holds no if-chains over kinds and paths.
//
//   Live  : what the provider's observe produced (a netlink dump, an OVSDB snapshot, esxcli output, ...)
//   Apply : what a step is executed against (a netlink session, a transaction being built, a command batch, ...)
#pragma once
#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/netaddr.h"
#include "reconciler/provider.h"

namespace vnetplan {

// One attribute being checked at plan time, with the messages a check may give.
struct FieldCheck {
  const Resource& resource;
  const Target& target;
  const std::string& path;
  const Json& value;
  Diagnostics& diags;
  std::string_view provider;  // "linux": every message starts with it
  // "<provider>: <message>" at the field's value in the manifest. A value the resource inherited is reported
  // where it is declared (the PortGroup or Switch), in terms of that resource: every port that inherits it gives
  // the same message at the same place, which Diagnostics keeps once.
  void fail(const std::string& message, const char* code = "provider/invalid") const;
  // An integer in [lo, hi] (an integral float or decimal string counts: normalize turns those into integers).
  bool requireInt(int64_t lo, int64_t hi, const char* unit = "") const;
  bool requireBool() const;
  bool requireString() const;
  // A list of interface addresses in CIDR form, each once, none IPv6 link-local (the kernel makes those).
  bool requireAddressList() const;
};

// A field a row accepts: an exact path, or every path below a prefix ending in '.' ("" accepts every path: for
// test providers). `check` validates the value (nullptr: whatever the schema allows is fine).
struct FieldRule {
  std::string_view path;
  void (*check)(const FieldCheck&) = nullptr;
  bool matches(const std::string& p) const {
    if (path.empty()) return true;
    if (path.back() == '.') return p.compare(0, path.size(), path) == 0;
    return p == path;
  }
};

template <class Live, class Apply>
struct KindHooks {
  Kind kind = Kind::Switch;
  // The value of the provider's variant attribute that selects this row (a Port's `type`: "veth"), or "" when
  // the row is the kind's only one (every object of the kind).
  const char* variant = "";
  const char* label = "";  // "bridge", "veth", "port group": in messages and step descriptions
  const KindTraits* traits = nullptr;  // shared by every row of one kind
  std::vector<FieldRule> fields;       // what this row accepts beyond the provider's common fields

  // ---- plan time
  // Checks across fields (required ones, combinations), after every field passed its own rule.
  void (*check)(const Resource&, const Target&, Diagnostics&) = nullptr;
  // Canonical spelling of desired values (units, case, order), so they compare equal to observed ones.
  void (*normalize)(Resource&) = nullptr;
  // Details for the step's description: a create's notable settings ("stp on"), a delete's side effects ("and
  // its peer v0p"). The generic text around them is TableProvider's.
  void (*describe)(const Step&, const Target&, std::vector<std::string>&) = nullptr;

  // ---- live
  // Adds every object of this row found in `live`.
  void (*observe)(Live&, Observation&) = nullptr;
  Status (*create)(Apply&, const Step&) = nullptr;
  Status (*update)(Apply&, const Step&) = nullptr;
  Status (*remove)(Apply&, const Step&) = nullptr;
  // Plan time, a change of an existing object: what its live attributes forbid (Provider::checkChange).
  void (*checkChange)(const Resource&, const Attrs& live, Diagnostics&) = nullptr;
};

template <class Live, class Apply>
class KindTable {
 public:
  using Row = KindHooks<Live, Apply>;

  // `variantPath`: the attribute that selects among several rows of one kind.
  explicit KindTable(std::vector<const Row*> rows, std::string variantPath = "type")
      : rows_(std::move(rows)), variantPath_(std::move(variantPath)) {}

  const std::vector<const Row*>& rows() const { return rows_; }

  const KindTraits* traits(Kind kind) const {
    for (const Row* r : rows_)
      if (r->kind == kind) return r->traits;
    return nullptr;
  }

  // The variant `attrs` names (or the kind's default from its traits); "" when the kind has one row.
  std::string variantOf(Kind kind, const Attrs& attrs) const {
    if (auto v = attrs.getString(variantPath_)) return *v;
    if (const KindTraits* t = traits(kind)) {
      auto d = t->defaults.find(variantPath_);
      if (d != t->defaults.end() && d->second.is_string()) return d->second.template get<std::string>();
    }
    return "";
  }

  // The row for an object of `kind` with `attrs`; nullptr when the provider cannot express it.
  const Row* row(Kind kind, const Attrs& attrs) const {
    const Row* only = nullptr;
    size_t n = 0;
    for (const Row* r : rows_)
      if (r->kind == kind) {
        ++n;
        if (!*r->variant) only = r;
      }
    if (only && n == 1) return only;
    const std::string v = variantOf(kind, attrs);
    for (const Row* r : rows_)
      if (r->kind == kind && r->variant == v) return r;
    return nullptr;
  }

  // The rows of `kind` (other than `except`) that accept `path`: for "only valid for a tap Port" messages.
  std::vector<const Row*> rowsAccepting(Kind kind, const std::string& path, const Row* except = nullptr) const {
    std::vector<const Row*> out;
    for (const Row* r : rows_)
      if (r->kind == kind && r != except)
        for (const auto& f : r->fields)
          if (f.matches(path)) {
            out.push_back(r);
            break;
          }
    return out;
  }

  const Row* row(const Step& step) const {
    const Attrs& a = step.action == StepAction::Delete ? step.before : step.after;
    if (step.action == StepAction::Update && !a.has(variantPath_) && step.before.has(variantPath_))
      return row(step.addr.kind, step.before);
    return row(step.addr.kind, a);
  }

  // The variants of `kind` this provider has ("tap, veth"), for messages.
  std::string variantList(Kind kind) const {
    std::vector<std::string> out;
    for (const Row* r : rows_)
      if (r->kind == kind && *r->variant) out.emplace_back(r->variant);
    std::sort(out.begin(), out.end());
    std::string s;
    for (const auto& v : out) s += (s.empty() ? "" : ", ") + v;
    return s;
  }

  std::string kindList() const {
    std::set<std::string> names;
    for (const Row* r : rows_) names.insert(kindName(r->kind));
    std::string s;
    for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
    return s;
  }

  void observe(Live& live, Observation& obs) const {
    for (const Row* r : rows_)
      if (r->observe) r->observe(live, obs);
  }

  Status apply(Apply& ctx, const Step& step) const {
    const Row* r = row(step);
    if (!r) return err("no " + std::string(kindName(step.addr.kind)) + " of this kind can be managed here");
    auto hook = step.action == StepAction::Create ? r->create : step.action == StepAction::Update ? r->update : r->remove;
    if (!hook) return err(std::string(stepActionName(step.action)) + " of a " + std::string(r->label) + " is not supported");
    return hook(ctx, step);
  }

 private:
  std::vector<const Row*> rows_;
  std::string variantPath_;
};

// Shared plan-time and description logic of a provider made from a KindTable. The provider adds what is its own:
// its Target fields, the fields every kind shares, why an unlisted field is not supported, connect.
template <class Live, class Apply>
class TableProvider : public Provider {
 public:
  using Table = KindTable<Live, Apply>;
  using Row = typename Table::Row;

  const KindTraits* traits(Kind kind) const override { return table_.traits(kind); }

  void check(const Resource& r, const Target& target, Diagnostics& diags) const override {
    const Row* row = table_.row(r.addr.kind, r.attrs);
    if (!row) {
      rejectKind(r, target, diags);
      // Still say which fields no variant of the kind would take: nothing is silently ignored.
      if (table_.traits(r.addr.kind))
        for (const auto& [path, value] : r.attrs.values()) {
          if ((value.is_object() && value.empty()) || findRule(commonFields(r.addr.kind), path) ||
              !table_.rowsAccepting(r.addr.kind, path).empty())
            continue;
          unsupportedField(FieldCheck{r, target, path, value, diags, name()}, nullptr);
        }
      return;
    }
    checkCommon(r, target, diags);
    for (const auto& [path, value] : r.attrs.values()) {
      if (value.is_object() && value.empty()) continue;  // an empty block sets nothing (normalize drops it)
      FieldCheck fc{r, target, path, value, diags, name()};
      const FieldRule* rule = findRule(row->fields, path);
      if (!rule) rule = findRule(commonFields(r.addr.kind), path);
      if (!rule) {
        unsupportedField(fc, row);
        continue;
      }
      if (rule->check) rule->check(fc);
    }
    if (row->check) row->check(r, target, diags);
  }

  void checkChange(const Resource& r, const Attrs& live, Diagnostics& diags) const override {
    if (const Row* row = table_.row(r.addr.kind, r.attrs); row && row->checkChange) row->checkChange(r, live, diags);
  }

  void normalize(Resource& r) const override {
    normalizeCommon(r);
    if (const Row* row = table_.row(r.addr.kind, r.attrs); row && row->normalize) row->normalize(r);
  }

  std::string describe(const Step& step, const Target& target) const override {
    const Row* row = table_.row(step);
    std::string label = row ? row->label : kindName(step.addr.kind);
    std::vector<std::string> parts;
    if (step.action == StepAction::Update) {
      for (const auto& path : step.changed) parts.push_back(path + " " + changeText(step, path));
    } else {
      if (step.action == StepAction::Create) commonDetails(step.after, parts);
      if (row && row->describe) row->describe(step, target, parts);
      if (step.action == StepAction::Create) commonDetailsAfter(step.after, parts);
    }
    std::string out = std::string(stepActionName(step.action)) + " " + label + " " + step.addr.name;
    std::string where = whereText(target);
    if (step.action == StepAction::Update) {
      out += where;
      for (size_t i = 0; i < parts.size(); ++i) out += (i ? ", " : ": ") + parts[i];
      return out;
    }
    if (!parts.empty()) {
      out += " (";
      for (size_t i = 0; i < parts.size(); ++i) out += (i ? ", " : "") + parts[i];
      out += ")";
    }
    return out + where;
  }

  const Table& table() const { return table_; }

 protected:
  explicit TableProvider(Table table) : table_(std::move(table)) {}

  // Checks every resource gets before its fields (e.g. that its name is a valid interface name).
  virtual void checkCommon(const Resource& r, const Target& target, Diagnostics& diags) const {
    (void)r, (void)target, (void)diags;
  }
  // The fields every row of `kind` accepts (mtu, up, addresses, ...).
  virtual const std::vector<FieldRule>& commonFields(Kind kind) const = 0;
  // A field no rule accepts: say why this provider cannot express it (`row` is null when the kind's variant is
  // unknown, and the field is one no variant accepts).
  virtual void unsupportedField(const FieldCheck& fc, const Row* row) const = 0;
  // A kind or variant the table has no row for.
  virtual void rejectKind(const Resource& r, const Target& target, Diagnostics& diags) const {
    (void)target;
    std::string variants = table_.variantList(r.addr.kind);
    std::string msg = variants.empty()
                          ? "kind " + std::string(kindName(r.addr.kind)) + " is not supported by the " + std::string(name()) +
                                " provider (it manages " + table_.kindList() + ")"
                          : std::string(kindName(r.addr.kind)) + " type '" + table_.variantOf(r.addr.kind, r.attrs) +
                                "' is not supported by the " + std::string(name()) + " provider (supported: " + variants + ")";
    diags.error(r.loc, std::string(name()) + ": " + r.addr.str() + ": " + msg, "provider/unsupported");
  }
  // Canonical spelling of the common fields (before the row's own normalize).
  virtual void normalizeCommon(Resource& r) const {
    std::vector<std::string> empties;
    for (const auto& [path, v] : r.attrs.values())
      if (v.is_object() && v.empty()) empties.push_back(path);
    for (const auto& path : empties) r.attrs.erase(path), r.origins.erase(path);
  }
  // The creation details every kind shows, in this order: mtu first.
  virtual void commonDetails(const Attrs& after, std::vector<std::string>& parts) const {
    if (const Json* mtu = after.find("mtu")) parts.push_back("mtu " + show(mtu));
  }
  // Details shown after the row's own (e.g. "on bridge br0", "down").
  virtual void commonDetailsAfter(const Attrs& after, std::vector<std::string>& parts) const {
    (void)after, (void)parts;
  }
  // " in netns demo", " on unix:/run/db.sock": where the target is, appended to every description.
  virtual std::string whereText(const Target& target) const { return " on target " + target.name; }

  static const FieldRule* findRule(const std::vector<FieldRule>& rules, const std::string& path) {
    for (const auto& r : rules)
      if (r.matches(path)) return &r;
    return nullptr;
  }

  static std::string show(const Json* v) {
    if (!v || v->is_null()) return "(none)";
    if (v->is_string()) return v->get<std::string>();
    if (v->is_array()) {
      std::string out;
      for (const auto& e : *v) out += (out.empty() ? "" : " ") + (e.is_string() ? e.get<std::string>() : e.dump());
      return out.empty() ? "(none)" : out;
    }
    return v->dump();
  }

  // "1500 -> 9000"; for a list of strings, what is added and removed ("+10.0.0.1/24 -10.0.1.1/24").
  static std::string changeText(const Step& step, const std::string& path) {
    const Json* b = step.before.find(path);
    const Json* a = step.after.find(path);
    auto strings = [](const Json* j) {
      std::set<std::string> out;
      if (j && j->is_array())
        for (const auto& e : *j)
          if (e.is_string()) out.insert(e.get<std::string>());
      return out;
    };
    bool stringLists = (!b || b->is_null() || b->is_array()) && (!a || a->is_null() || a->is_array()) && (a || b) &&
                       ((a && a->is_array() && !a->empty() && (*a)[0].is_string()) ||
                        (b && b->is_array() && !b->empty() && (*b)[0].is_string()));
    if (stringLists) {
      auto before = strings(b), after = strings(a);
      std::string delta;
      for (const auto& x : after)
        if (!before.count(x)) delta += (delta.empty() ? "+" : " +") + x;
      for (const auto& x : before)
        if (!after.count(x)) delta += (delta.empty() ? "-" : " -") + x;
      return delta.empty() ? "(reordered)" : delta;
    }
    return show(b) + " -> " + show(a);
  }

  Table table_;
};

// ---- value checks shared by every provider

inline void FieldCheck::fail(const std::string& message, const char* code) const {
  std::string text = message;
  auto origin = resource.origins.find(path);
  if (origin != resource.origins.end() && origin->second.origin == Origin::Inherited) {
    const std::string self = resource.addr.str(), from = origin->second.from;
    for (size_t at = text.find(self); at != std::string::npos; at = text.find(self, at + from.size()))
      text.replace(at, self.size(), from);
  }
  diags.error(resource.locOf(path), std::string(provider) + ": " + text, code);
}

inline bool FieldCheck::requireAddressList() const {
  if (!value.is_array()) {
    fail("field " + path + " must be a list of CIDR addresses");
    return false;
  }
  bool ok = true;
  std::set<std::string> seen;
  for (const auto& e : value) {
    if (!e.is_string()) {
      fail("field " + path + ": " + e.dump() + " is not a CIDR address");
      ok = false;
      continue;
    }
    std::string why;
    auto c = parsePrefix(e.get<std::string>(), &why);
    if (!c) {
      fail("field " + path + ": invalid address '" + e.get<std::string>() + "': " + why);
      ok = false;
      continue;
    }
    if (c->isIpv6LinkLocal()) {
      fail("field " + path + ": " + e.get<std::string>() + " is an IPv6 link-local address; the kernel manages those itself");
      ok = false;
    }
    if (!seen.insert(c->str()).second) {
      fail("field " + path + " lists " + c->str() + " more than once");
      ok = false;
    }
  }
  return ok;
}

inline bool FieldCheck::requireInt(int64_t lo, int64_t hi, const char* unit) const {
  std::optional<int64_t> n;
  if (value.is_number_integer()) {
    n = value.get<int64_t>();
  } else if (value.is_number_float()) {
    double d = value.get<double>();
    if (d == static_cast<double>(static_cast<int64_t>(d)) && d > -9e15 && d < 9e15) n = static_cast<int64_t>(d);
  } else if (value.is_string()) {
    const std::string& s = value.get_ref<const std::string&>();
    if (!s.empty() && s.size() <= 18 && s.find_first_not_of("0123456789") == std::string::npos) n = std::stoll(s);
  }
  const std::string u = *unit ? std::string(" ") + unit : "";
  if (!n) {
    fail("field " + path + " must be a whole number" + (*unit ? std::string(" of ") + unit : ""));
    return false;
  }
  if (*n < lo || *n > hi) {
    fail("field " + path + " is " + std::to_string(*n) + ", outside " + std::to_string(lo) + ".." + std::to_string(hi) + u);
    return false;
  }
  return true;
}

inline bool FieldCheck::requireBool() const {
  if (value.is_boolean()) return true;
  fail("field " + path + " must be true or false");
  return false;
}

inline bool FieldCheck::requireString() const {
  if (value.is_string()) return true;
  fail("field " + path + " must be a string");
  return false;
}

}  // namespace vnetplan
