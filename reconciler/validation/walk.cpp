// GCC 12 reports false positives in libstdc++ code inlined here at -O3 (-Wrestrict on std::string operator+,
// GCC PR 105651) and with sanitizers (-Wmaybe-uninitialized inside std::regex's std::function); both are compiler
// bugs in headers we do not own, and -Werror would otherwise break Release and sanitizer builds.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic ignored "-Wrestrict"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema_parser.hpp>

#include <algorithm>
#include <cmath>
#include <set>
#include <stdexcept>

#include "reconciler/validation/impl.h"

namespace vnetplan {

SchemaValidator::Impl::Impl() {
  schema = Json::parse(std::string(kEmbeddedSchema, kEmbeddedSchemaSize));
  const Json& defs = schema.at("definitions");
  for (const auto& k : schema.at("properties").at("kind").at("enum")) kindNames.push_back(k.get<std::string>());

  // One pass over every object in the schema: compile its patterns (for our own matching; valijson compiles its
  // own copies once per Validator) and resolve its $ref; then index what the walk needs of each node.
  std::vector<const Json*> objects;
  std::vector<const Json*> stack{&schema};
  auto compile = [&](const std::string& pattern) {
    if (!regexes.count(pattern)) regexes.emplace(pattern, std::regex(pattern));
  };
  while (!stack.empty()) {
    const Json* n = stack.back();
    stack.pop_back();
    if (n->is_object()) {
      objects.push_back(n);
      if (auto p = n->find("pattern"); p != n->end() && p->is_string()) compile(*p);
      if (auto pp = n->find("patternProperties"); pp != n->end() && pp->is_object())
        for (const auto& [pattern, _] : pp->items()) compile(pattern);
      if (n->contains("$ref")) refTargets[n] = &resolveSlow(*n);
      for (const auto& [key, child] : n->items())
        if (key != "enum" && key != "const") stack.push_back(&child);
    } else if (n->is_array()) {
      for (const auto& child : *n) stack.push_back(&child);
    }
  }
  for (const Json* n : objects) {
    NodeInfo in;
    auto get = [&](const char* key) -> const Json* {
      auto it = n->find(key);
      return it == n->end() ? nullptr : &*it;
    };
    for (auto [key, list] : {std::pair{"allOf", &in.allOf}, {"oneOf", &in.oneOf}, {"anyOf", &in.anyOf}})
      if (const Json* alts = get(key); alts && alts->is_array())
        for (const auto& a : *alts) list->push_back(&resolve(a));
    if (const Json* c = get("if")) {
      in.ifNode = &resolve(*c);
      if (const Json* t = get("then")) in.thenNode = &resolve(*t);
      if (const Json* e = get("else")) in.elseNode = &resolve(*e);
    }
    in.properties = get("properties");
    in.patternProperties = get("patternProperties");
    if (const Json* add = get("additionalProperties")) {
      if (*add == false)
        in.closed = true;
      else if (add->is_object() || *add == true)
        in.additional = &resolve(*add);
    }
    if (const Json* items = get("items")) in.items = items->is_array() ? items : &resolve(*items);
    in.additionalItems = get("additionalItems");
    if (const Json* p = get("pattern"); p && p->is_string()) in.pattern = p;
    if (const Json* f = get("x-format"); f && f->is_string()) in.format = f;
    if (const Json* o = get("x-orderedRange")) in.orderedRange = *o == true;
    for (const auto& [key, value] : n->items()) {
      auto kw = keywordTable().find(key);
      if (kw == keywordTable().end()) continue;
      // patternProperties is checked by the additionalProperties case only; our schema never uses it alone.
      in.keywords.emplace_back(kw->second, &value);
    }
    infos.emplace(n, std::move(in));
  }

  valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
  for (const auto& kind : kindNames) {
    if (!defs.contains(kind)) throw std::runtime_error("schema: no definition for kind " + kind);
    Json wrapper = {{"$ref", "#/definitions/" + kind}, {"definitions", defs}};
    auto [it, _] = wrappers.emplace(kind, std::move(wrapper));
    auto compiledSchema = std::make_unique<valijson::Schema>();
    valijson::adapters::NlohmannJsonAdapter adapter(it->second);
    parser.populateSchema(adapter, *compiledSchema);
    compiled.emplace(kind, std::move(compiledSchema));
  }
}

const Json& SchemaValidator::Impl::resolve(const Json& node) const {
  auto it = refTargets.find(&node);
  return it == refTargets.end() ? node : *it->second;
}

const Json& SchemaValidator::Impl::resolveSlow(const Json& node) const {
  const Json* n = &node;
  for (int hops = 0; hops < 32 && n->is_object(); ++hops) {
    auto r = n->find("$ref");
    if (r == n->end() || !r->is_string()) break;
    const std::string& ref = r->get_ref<const std::string&>();
    if (ref.rfind("#", 0) != 0) break;
    const Json* target = &schema;
    for (const auto& seg : splitPointer(ref.substr(1))) {
      target = childOf(target, seg);
      if (!target) throw std::runtime_error("schema: unresolvable $ref " + ref);
    }
    n = target;
  }
  return *n;
}

bool SchemaValidator::Impl::patternMatches(const std::string& pattern, const std::string& s) const {
  auto it = regexes.find(pattern);
  if (it == regexes.end()) return true;
  return std::regex_search(s, it->second);
}

// Could `v` be meant for this alternative? (Its type fits; nothing else is checked.)
bool SchemaValidator::Impl::typeCompatible(const Json& node, const Json& v) const {
  const Json& n = resolve(node);
  if (n.is_boolean()) return n.get<bool>();
  if (!n.is_object()) return true;
  if (auto t = n.find("type"); t != n.end()) {
    if (t->is_string()) return valueHasType(v, t->get_ref<const std::string&>());
    if (t->is_array())
      return std::any_of(t->begin(), t->end(), [&](const Json& x) {
        return x.is_string() && valueHasType(v, x.get_ref<const std::string&>());
      });
  }
  auto sameCategory = [&](const Json& x) { return (x.is_number() && v.is_number()) || x.type() == v.type(); };
  if (auto c = n.find("const"); c != n.end()) return sameCategory(*c);
  if (auto e = n.find("enum"); e != n.end() && e->is_array()) return std::any_of(e->begin(), e->end(), sameCategory);
  for (const char* key : {"oneOf", "anyOf"}) {
    if (auto alts = n.find(key); alts != n.end() && alts->is_array())
      return std::any_of(alts->begin(), alts->end(), [&](const Json& a) { return typeCompatible(a, v); });
  }
  if (auto all = n.find("allOf"); all != n.end() && all->is_array())
    return std::all_of(all->begin(), all->end(), [&](const Json& a) { return typeCompatible(a, v); });
  return true;
}

// A boolean JSON Schema check for the keywords our schema uses (if/then conditions and alternative selection).
bool SchemaValidator::Impl::matches(const Json& node, const Json& v) const {
  const Json& s = resolve(node);
  if (s.is_boolean()) return s.get<bool>();
  if (!s.is_object()) return true;
  const NodeInfo& in = info(&s);
  for (const auto& [key, kwp] : in.keywords) {
    const Json& kw = *kwp;
    switch (key) {
      case Keyword::Type:
        if (kw.is_string() && !valueHasType(v, kw.get_ref<const std::string&>())) return false;
        if (kw.is_array() && std::none_of(kw.begin(), kw.end(), [&](const Json& t) {
              return t.is_string() && valueHasType(v, t.get_ref<const std::string&>());
            }))
          return false;
        break;
      case Keyword::Const:
        if (!(kw == v)) return false;
        break;
      case Keyword::Enum:
        if (!kw.is_array() || std::find(kw.begin(), kw.end(), v) == kw.end()) return false;
        break;
      case Keyword::Minimum:
      case Keyword::Maximum:
      case Keyword::ExclusiveMinimum:
      case Keyword::ExclusiveMaximum: {
        if (!v.is_number() || !kw.is_number()) break;
        double x = v.get<double>(), b = kw.get<double>();
        if ((key == Keyword::Minimum && x < b) || (key == Keyword::Maximum && x > b) ||
            (key == Keyword::ExclusiveMinimum && x <= b) || (key == Keyword::ExclusiveMaximum && x >= b))
          return false;
        break;
      }
      case Keyword::MultipleOf:
        if (v.is_number() && kw.is_number() && kw.get<double>() > 0) {
          double q = v.get<double>() / kw.get<double>();
          if (std::fabs(q - std::round(q)) > 1e-9) return false;
        }
        break;
      case Keyword::MinLength:
      case Keyword::MaxLength: {
        if (!v.is_string()) break;
        size_t len = utf8Length(v.get_ref<const std::string&>());
        if ((key == Keyword::MinLength && len < kw.get<size_t>()) ||
            (key == Keyword::MaxLength && len > kw.get<size_t>()))
          return false;
        break;
      }
      case Keyword::Pattern:
        if (v.is_string() && !patternMatches(kw, v.get_ref<const std::string&>())) return false;
        break;
      case Keyword::Required:
        if (!v.is_object()) break;
        for (const auto& r : kw)
          if (!v.contains(r.get_ref<const std::string&>())) return false;
        break;
      case Keyword::MinProperties:
      case Keyword::MaxProperties:
        if (!v.is_object()) break;
        if ((key == Keyword::MinProperties && v.size() < kw.get<size_t>()) ||
            (key == Keyword::MaxProperties && v.size() > kw.get<size_t>()))
          return false;
        break;
      case Keyword::MinItems:
      case Keyword::MaxItems:
        if (!v.is_array()) break;
        if ((key == Keyword::MinItems && v.size() < kw.get<size_t>()) ||
            (key == Keyword::MaxItems && v.size() > kw.get<size_t>()))
          return false;
        break;
      case Keyword::UniqueItems:
        if (!v.is_array() || kw != true) break;
        for (size_t i = 0; i < v.size(); ++i)
          for (size_t j = i + 1; j < v.size(); ++j)
            if (v[i] == v[j]) return false;
        break;
      case Keyword::Properties:
        if (!v.is_object()) break;
        for (const auto& [name, sub] : kw.items())
          if (auto it = v.find(name); it != v.end() && !matches(sub, *it)) return false;
        break;
      case Keyword::AdditionalProperties:  // with patternProperties: a key they name is not "additional"
        if (!v.is_object()) break;
        for (const auto& [name, sub] : v.items()) {
          bool matched = in.properties && in.properties->contains(name);
          if (in.patternProperties)
            for (const auto& [pat, psub] : in.patternProperties->items())
              if (patternMatches(pat, name)) {
                matched = true;
                if (!matches(psub, sub)) return false;
              }
          if (!matched && !matches(kw, sub)) return false;
        }
        break;
      case Keyword::Items:
        if (!v.is_array()) break;
        if (kw.is_array()) {
          for (size_t i = 0; i < v.size() && i < kw.size(); ++i)
            if (!matches(kw[i], v[i])) return false;
        } else {
          for (const auto& item : v)
            if (!matches(kw, item)) return false;
        }
        break;
      case Keyword::Dependencies:
        if (!v.is_object()) break;
        for (const auto& [name, dep] : kw.items()) {
          if (!v.contains(name)) continue;
          if (dep.is_array()) {
            for (const auto& r : dep)
              if (!v.contains(r.get_ref<const std::string&>())) return false;
          } else if (!matches(dep, v)) {
            return false;
          }
        }
        break;
      case Keyword::AllOf:
        for (const Json* sub : in.allOf)
          if (!matches(*sub, v)) return false;
        break;
      case Keyword::AnyOf:
        if (std::none_of(in.anyOf.begin(), in.anyOf.end(), [&](const Json* sub) { return matches(*sub, v); }))
          return false;
        break;
      case Keyword::OneOf:
        if (std::count_if(in.oneOf.begin(), in.oneOf.end(), [&](const Json* sub) { return matches(*sub, v); }) != 1)
          return false;
        break;
      case Keyword::Not:
        if (matches(kw, v)) return false;
        break;
      case Keyword::If: {
        const Json* branch = matches(*in.ifNode, v) ? in.thenNode : in.elseNode;
        if (branch && !matches(*branch, v)) return false;
        break;
      }
    }
  }
  return true;
}

// Collects the schema nodes that apply to `v` under `node`. AllAlternatives keeps every branch of oneOf/anyOf
// (to describe what would have been accepted); Selected keeps the branches the value matches, else those whose
// type fits (to find which fields are known). if/then/else always follows the branch the value selects.
void SchemaValidator::Impl::expand(const Json& node, const Json* v, std::vector<const Json*>& out, Mode mode,
                                   int depth) const {
  if (depth > 64) return;
  const Json& n = resolve(node);
  if (!n.is_object()) {
    if (n.is_boolean()) out.push_back(&n);
    return;
  }
  if (std::find(out.begin(), out.end(), &n) != out.end()) return;
  out.push_back(&n);
  const NodeInfo& in = info(&n);
  for (const Json* sub : in.allOf) expand(*sub, v, out, mode, depth + 1);
  for (const auto* alts : {&in.oneOf, &in.anyOf}) {
    if (alts->empty()) continue;
    if (mode == Mode::Selected && v) {
      bool any = false;
      for (const Json* a : *alts)
        if (matches(*a, *v)) {
          expand(*a, v, out, mode, depth + 1);
          any = true;
        }
      if (!any)
        for (const Json* a : *alts)
          if (typeCompatible(*a, *v)) expand(*a, v, out, mode, depth + 1);
    } else {
      for (const Json* a : *alts) expand(*a, v, out, mode, depth + 1);
    }
  }
  if (in.ifNode) {
    if (v) {
      const Json* branch = matches(*in.ifNode, *v) ? in.thenNode : in.elseNode;
      if (branch) expand(*branch, v, out, mode, depth + 1);
    } else {
      if (in.thenNode) expand(*in.thenNode, v, out, mode, depth + 1);
      if (in.elseNode) expand(*in.elseNode, v, out, mode, depth + 1);
    }
  }
}

std::vector<const Json*> SchemaValidator::Impl::expandAll(const std::vector<const Json*>& nodes, const Json* v,
                                                          Mode mode) const {
  std::vector<const Json*> out;
  for (const Json* n : nodes) expand(*n, v, out, mode);
  return out;
}

std::vector<const Json*> SchemaValidator::Impl::children(const std::vector<const Json*>& expanded, const Json* parent,
                                                         const std::string& seg) const {
  std::vector<const Json*> out;
  const bool isArray = parent && parent->is_array();
  for (const Json* n : expanded) {
    const NodeInfo& in = info(n);
    if (isArray) {
      if (!in.items) continue;
      if (in.items->is_array()) {
        size_t i = std::stoul(seg);
        if (i < in.items->size())
          out.push_back(&(*in.items)[i]);
        else if (in.additionalItems)
          out.push_back(in.additionalItems);
      } else {
        out.push_back(in.items);
      }
      continue;
    }
    if (in.properties) {
      if (auto p = in.properties->find(seg); p != in.properties->end()) {
        out.push_back(&*p);
        continue;
      }
    }
    bool matched = false;
    if (in.patternProperties) {
      for (const auto& [pat, sub] : in.patternProperties->items())
        if (patternMatches(pat, seg)) {
          out.push_back(&sub);
          matched = true;
        }
    }
    if (!matched && in.additional) out.push_back(in.additional);
  }
  return out;
}

std::vector<const Json*> SchemaValidator::Impl::candidatesAt(const std::string& kind, const Json& body,
                                                             const std::vector<std::string>& segs, Mode mode) const {
  std::vector<const Json*> nodes{&schema.at("definitions").at(kind)};
  const Json* v = &body;
  for (const auto& seg : segs) {
    auto expanded = expandAll(nodes, v, mode);
    nodes = children(expanded, v, seg);
    v = childOf(v, seg);
    if (!v) break;
  }
  return expandAll(nodes, v, mode);
}

// ------------------------------------------------------------------------------------------------- the walk

void SchemaValidator::Impl::walk(const Document& doc, const std::vector<const Json*>& nodes, const Json& v,
                                 const std::string& pointer, std::vector<Finding>& out) const {
  if (nodes.empty()) return;
  auto expanded = expandAll(nodes, &v, Mode::Selected);
  if (v.is_object()) {
    // A key is unknown when a node that forbids additional properties neither names nor pattern-matches it.
    std::vector<const NodeInfo*> closing;
    for (const Json* n : expanded)
      if (const NodeInfo& in = info(n); in.closed) closing.push_back(&in);
    for (const auto& [key, child] : v.items()) {
      const std::string childPtr = pointer + "/" + pointerEscape(key);
      bool unknown = false;
      for (const NodeInfo* in : closing) {
        bool known = in->properties && in->properties->contains(key);
        if (!known && in->patternProperties)
          for (const auto& [pat, _] : in->patternProperties->items()) known = known || patternMatches(pat, key);
        unknown = unknown || !known;
      }
      if (!unknown) {
        walk(doc, children(expanded, &v, key), child, childPtr, out);
        continue;
      }
      std::set<std::string> allowed;
      for (const NodeInfo* in : closing)
        if (in->properties)
          for (const auto& [name, _] : in->properties->items()) allowed.insert(name);
      std::vector<std::string> names(allowed.begin(), allowed.end());
      std::string where = displayPath(doc.body, splitPointer(pointer));
      std::string hint = closestMatch(key, names);
      std::string msg =
          "unknown field '" + truncated(key) + "' " + (where.empty() ? "at the top level" : "in " + where);
      if (!hint.empty()) {
        msg += " (did you mean '" + hint + "'?)";
      } else if (!names.empty()) {
        std::string list;
        for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
        msg += " (valid fields: " + list + ")";
      }
      out.push_back(Finding{childPtr, doc.keyAt(childPtr), msg, "unknown-field", hint});
    }
  } else if (v.is_array()) {
    for (size_t i = 0; i < v.size(); ++i) {
      const std::string idx = std::to_string(i);
      walk(doc, children(expanded, &v, idx), v[i], pointer + "/" + idx, out);
    }
  } else if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    for (const Json* n : expanded) {
      const NodeInfo& in = info(n);
      if (!in.format && !in.orderedRange) continue;
      if (in.pattern && !patternMatches(*in.pattern, s)) continue;  // valijson reports the pattern itself
      auto what = [&] {
        auto pem = n->find("patternErrorMessage");
        return pem != n->end() ? pem->get<std::string>() : std::string("a valid value");
      };
      auto path = [&] { return displayPath(doc.body, splitPointer(pointer)); };
      if (in.format && !checkAddressFormat(*in.format, s)) {
        out.push_back(Finding{pointer, doc.at(pointer), path() + ": must be " + what() + " (got " + gotValue(v) + ")",
                              "schema", ""});
      }
      long long a = 0, b = 0;
      if (in.orderedRange && parseRange(s, a, b) && a > b) {
        out.push_back(Finding{pointer, doc.at(pointer),
                              path() + ": range '" + truncated(s) + "' is reversed; write it as '" + std::to_string(b) +
                                  "-" + std::to_string(a) + "'",
                              "schema", ""});
      }
    }
  }
}

}  // namespace vnetplan
