// GCC 12 reports false positives in libstdc++ code inlined here at -O3 (-Wrestrict on std::string operator+,
// GCC PR 105651) and with sanitizers (-Wmaybe-uninitialized inside std::regex's std::function); both are compiler
// bugs in headers we do not own, and -Werror would otherwise break Release and sanitizer builds.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic ignored "-Wrestrict"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <algorithm>
#include <cmath>
#include <set>

#include "reconciler/validation/impl.h"

namespace vnetplan {


std::string SchemaValidator::Impl::explainOne(const Document& doc, const std::string& kind, ErrClass cls,
                                              const std::string& desc, const std::string& pointer,
                                              SourceLoc& loc) const {
  const auto segs = splitPointer(pointer);
  const Json* v = valueAt(doc.body, segs);
  const std::string path = displayPath(doc.body, segs);
  const std::string prefix = path.empty() ? "" : path + ": ";
  loc = doc.at(pointer);
  if (!v) return prefix + desc;
  const auto cands = candidatesAt(kind, doc.body, segs, Mode::AllAlternatives);
  auto withKey = [&](const char* key) {
    std::vector<const Json*> out;
    for (const Json* c : cands)
      if (c->is_object() && c->contains(key)) out.push_back(c);
    return out;
  };

  // A secret reference holding something else than a reference: never repeat what was written there (it may be
  // the secret itself).
  for (const Json* c : cands)
    if (c->is_object() && c->value("x-secret", false) && !v->is_object()) {
      auto em = c->find("errorMessage");
      return prefix + (em != c->end() && em->is_string() ? em->get<std::string>() : "must be a secret reference");
    }

  switch (cls) {
    case ErrClass::Type: {
      std::vector<std::string> types;
      for (const Json* c : withKey("type")) {
        const Json& t = (*c)["type"];
        std::vector<std::string> ts;
        if (t.is_string()) ts.push_back(t);
        if (t.is_array())
          for (const auto& x : t) ts.push_back(x);
        for (auto& x : ts)
          if (std::find(types.begin(), types.end(), x) == types.end()) types.push_back(x);
      }
      if (types.empty()) return prefix + "has the wrong type (got " + gotTyped(*v) + ")";
      std::string want;
      for (size_t i = 0; i < types.size(); ++i)
        want += (i == 0 ? "" : i + 1 == types.size() ? " or " : ", ") + typePhrase(types[i]);
      return prefix + "must be " + want + " (got " + gotTyped(*v) + ")";
    }
    case ErrClass::Enum: {
      for (const Json* c : withKey("enum")) {
        if (!typeCompatible(*c, *v)) continue;
        const Json& e = (*c)["enum"];
        if (std::find(e.begin(), e.end(), *v) != e.end()) continue;
        std::vector<std::string> opts;
        for (const auto& x : e) opts.push_back(x.is_string() ? x.get<std::string>() : x.dump());
        std::string list;
        for (const auto& o : opts) list += (list.empty() ? "" : ", ") + o;
        std::string msg = prefix + "must be one of " + list + " (got " + gotValue(*v) + ")";
        if (v->is_string()) {
          std::string hint = closestMatch(v->get<std::string>(), opts);
          if (!hint.empty()) msg += "; did you mean '" + hint + "'?";
        }
        return msg;
      }
      return "";  // an enum of another type: a branch the value was not meant for
    }
    case ErrClass::Const: {
      for (const Json* c : withKey("const")) {
        if (!typeCompatible(*c, *v) || (*c)["const"] == *v) continue;
        const Json& k = (*c)["const"];
        return prefix + "must be " + (k.is_string() ? "'" + k.get<std::string>() + "'" : k.dump()) + " (got " +
               gotValue(*v) + ")";
      }
      return "";
    }
    case ErrClass::Pattern: {
      if (!v->is_string()) return "";
      const Json* best = nullptr;
      for (const Json* c : withKey("pattern"))
        if (!patternMatches((*c)["pattern"], v->get<std::string>())) {
          best = c;
          break;
        }
      if (!best && !withKey("pattern").empty()) best = withKey("pattern").front();
      if (!best) return prefix + "has an invalid format (got " + gotValue(*v) + ")";
      auto pem = best->find("patternErrorMessage");
      std::string what =
          pem != best->end() ? pem->get<std::string>() : "text matching " + (*best)["pattern"].get<std::string>();
      return prefix + "must be " + what + " (got " + gotValue(*v) + ")";
    }
    case ErrClass::Maximum:
    case ErrClass::Minimum: {
      auto bound = trailingNumber(desc);
      const bool exclusive = desc.find("or equal") == std::string::npos;
      const char* boundKey = cls == ErrClass::Maximum ? (exclusive ? "exclusiveMaximum" : "maximum")
                                                      : (exclusive ? "exclusiveMinimum" : "minimum");
      for (const Json* c : withKey(boundKey)) {
        if (!typeCompatible(*c, *v) || !bound || (*c)[boundKey].get<double>() != *bound) continue;
        if (c->contains("minimum") && c->contains("maximum"))
          return prefix + "must be between " + formatNumber((*c)["minimum"].get<double>()) + " and " +
                 formatNumber((*c)["maximum"].get<double>()) + " (got " + gotValue(*v) + ")";
        break;
      }
      if (!bound) return prefix + desc;
      std::string rel = cls == ErrClass::Maximum ? (exclusive ? "less than " : "at most ")
                                                 : (exclusive ? "greater than " : "at least ");
      return prefix + "must be " + rel + formatNumber(*bound) + " (got " + gotValue(*v) + ")";
    }
    case ErrClass::MaxLength:
    case ErrClass::MinLength: {
      auto n = numbersIn(desc);
      long long bound = n.empty() ? 0 : n.front();
      if (cls == ErrClass::MinLength && bound == 1) return prefix + "must not be empty";
      return prefix + "must be " + (cls == ErrClass::MaxLength ? "at most " : "at least ") + std::to_string(bound) +
             " characters long (got " + std::to_string(v->is_string() ? utf8Length(v->get<std::string>()) : 0) + ")";
    }
    case ErrClass::MaxItems:
    case ErrClass::MinItems: {
      auto n = numbersIn(desc);
      long long bound = n.empty() ? 0 : n.front();
      if (cls == ErrClass::MinItems && bound == 1) return prefix + "must list at least one item";
      return prefix + "must list " + (cls == ErrClass::MaxItems ? "at most " : "at least ") + std::to_string(bound) +
             " items (got " + std::to_string(v->is_array() ? v->size() : 0) + ")";
    }
    case ErrClass::MaxProperties:
    case ErrClass::MinProperties: {
      auto n = numbersIn(desc);
      long long bound = n.empty() ? 0 : n.front();
      if (cls == ErrClass::MinProperties && bound == 1) return prefix + "must not be empty";
      return prefix + "must have " + (cls == ErrClass::MaxProperties ? "at most " : "at least ") +
             std::to_string(bound) + " entries";
    }
    case ErrClass::Unique: {
      auto n = numbersIn(desc);
      if (n.size() >= 2 && v->is_array() && static_cast<size_t>(n[1]) < v->size()) {
        loc = doc.at(pointer + "/" + std::to_string(n[1]));
        return prefix + gotValue((*v)[n[1]]) + " is listed twice (items " + std::to_string(n[0]) + " and " +
               std::to_string(n[1]) + ")";
      }
      return prefix + "must not list the same item twice";
    }
    case ErrClass::Dependency: {
      const std::string missing = quotedIn(desc);
      for (const Json* c : withKey("dependencies")) {
        for (const auto& [name, dep] : (*c)["dependencies"].items()) {
          if (!v->is_object() || !v->contains(name) || !dep.is_array()) continue;
          if (std::find(dep.begin(), dep.end(), Json(missing)) == dep.end()) continue;
          loc = doc.keyAt(pointer + "/" + pointerEscape(name));
          return prefix + "'" + name + "' needs '" + missing + "'";  // names come from the schema
        }
      }
      return prefix + "missing field '" + truncated(missing) + "'";
    }
    case ErrClass::Not: {
      for (const Json* c : withKey("not")) {
        const Json& sub = (*c)["not"];
        if (!matches(sub, *v)) continue;
        // Point at the (last written) field that makes the value forbidden, if the `not` names fields.
        std::vector<std::string> fields;
        std::vector<const Json*> stack{&resolve(sub)};
        while (!stack.empty()) {
          const Json* s = stack.back();
          stack.pop_back();
          if (!s->is_object()) continue;
          if (matches(*s, *v))
            if (auto req = s->find("required"); req != s->end())
              for (const auto& r : *req) fields.push_back(r);
          for (const char* k : {"anyOf", "oneOf", "allOf"})
            if (auto alts = s->find(k); alts != s->end())
              for (const auto& a : *alts) stack.push_back(&resolve(a));
        }
        loc = segs.empty() ? doc.loc : doc.keyAt(pointer);
        for (size_t i = 0; i < fields.size(); ++i) {
          SourceLoc l = doc.keyAt(pointer + "/" + pointerEscape(fields[i]));
          if (i == 0 || l.line > loc.line || (l.line == loc.line && l.col > loc.col)) loc = l;
        }
        auto em = c->find("errorMessage");
        return prefix + (em != c->end() ? em->get<std::string>() : "this value is not allowed here");
      }
      return prefix + "this value is not allowed here";
    }
    case ErrClass::OneOfMany: {
      for (const Json* c : withKey("oneOf")) {
        std::vector<std::string> present;
        bool requiredOnly = true;
        int matched = 0;
        for (const auto& alt : (*c)["oneOf"]) {
          const Json& a = resolve(alt);
          if (!matches(a, *v)) continue;
          ++matched;
          auto req = a.find("required");
          if (!a.is_object() || req == a.end() || req->size() != 1)
            requiredOnly = false;
          else
            present.push_back((*req)[0]);
        }
        if (matched < 2) continue;
        if (requiredOnly && !v->is_object()) return "";  // `required` passes on non-objects; the type error says it
        if (requiredOnly) {
          SourceLoc best = doc.keyAt(pointer + "/" + pointerEscape(present.front()));
          for (const auto& f : present) {
            SourceLoc l = doc.keyAt(pointer + "/" + pointerEscape(f));
            if (l.line > best.line || (l.line == best.line && l.col > best.col)) best = l;
          }
          loc = best;
          return prefix + "give only one of " + quotedList(present, "or") + ", not both";
        }
        return prefix + "matches more than one of the allowed forms";
      }
      return prefix + "matches more than one of the allowed forms";
    }
    case ErrClass::MultipleOf:
      return prefix + "must be a multiple of " + formatNumber(trailingNumber(desc).value_or(1)) + " (got " +
             gotValue(*v) + ")";
    case ErrClass::Format:
      return prefix + desc;
    case ErrClass::Summary: {
      for (const Json* c : cands)
        if (c->is_object() && c->contains("description") && (c->contains("oneOf") || c->contains("anyOf")))
          return prefix + "invalid value " + gotValue(*v) + "; expected " + (*c)["description"].get<std::string>();
      return prefix + "invalid value " + gotValue(*v);
    }
    case ErrClass::Required:
    case ErrClass::AdditionalProperty:
      break;  // handled by the caller
  }
  return prefix + desc;
}

void SchemaValidator::Impl::explain(const Document& doc, const std::string& kind, std::vector<Finding>& findings,
                                    const valijson::ValidationResults& results) const {
  struct Raw {
    ErrClass cls;
    std::string pointer;
    std::string desc;
  };
  std::vector<Raw> raws;
  for (const auto& e : results) {
    std::string pointer;
    for (size_t i = 1; i < e.context.size(); ++i) {
      const std::string& c = e.context[i];
      std::string seg = c.size() >= 2 && c.front() == '[' && c.back() == ']' ? c.substr(1, c.size() - 2) : c;
      pointer += "/" + pointerEscape(seg);
    }
    ErrClass cls = classify(e.description);
    // apiVersion and kind are checked before the schema, with better words.
    if (pointer == "/apiVersion" || pointer == "/kind") continue;
    if (pointer.empty() && cls == ErrClass::Required &&
        (quotedIn(e.description) == "apiVersion" || quotedIn(e.description) == "kind"))
      continue;
    if (pointer.empty() && cls == ErrClass::Summary && envelopeOnly(results)) continue;
    raws.push_back(Raw{cls, pointer, e.description});
  }

  auto atOrBelow = [](const std::string& p, const std::string& base) {
    return p == base || (p.size() > base.size() && p.compare(0, base.size(), base) == 0 && p[base.size()] == '/');
  };
  std::set<std::string> unknownPtrs;
  std::map<std::string, std::set<std::string>> suggestedAt;  // parent pointer -> names suggested for unknown keys
  for (const auto& f : findings) {
    if (f.code != "unknown-field") continue;
    unknownPtrs.insert(f.pointer);
    if (!f.suggestion.empty()) suggestedAt[f.pointer.substr(0, f.pointer.rfind('/'))].insert(f.suggestion);
  }

  // 1. Specific errors (everything but type mismatches and summaries).
  std::vector<Finding> specific;
  std::map<std::string, std::vector<std::string>> missing;  // pointer -> required names, in order
  for (const auto& r : raws) {
    if (r.cls == ErrClass::Type || r.cls == ErrClass::Summary) continue;
    if (r.cls == ErrClass::Required) {
      auto& names = missing[r.pointer];
      std::string name = quotedIn(r.desc);
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
      continue;
    }
    if (r.cls == ErrClass::AdditionalProperty) {
      const std::string key = quotedIn(r.desc);
      const std::string childPtr = r.pointer + "/" + pointerEscape(key);
      if (unknownPtrs.count(childPtr)) continue;
      bool anyUnknownHere = std::any_of(unknownPtrs.begin(), unknownPtrs.end(), [&](const std::string& u) {
        return u.compare(0, r.pointer.size() + 1, r.pointer + "/") == 0 &&
               u.find('/', r.pointer.size() + 1) == std::string::npos;
      });
      if (anyUnknownHere) continue;
      std::string where = displayPath(doc.body, splitPointer(r.pointer));
      specific.push_back(
          Finding{childPtr, doc.keyAt(childPtr),
                  "unknown field '" + truncated(key) + "' " + (where.empty() ? "at the top level" : "in " + where),
                  "unknown-field", ""});
      continue;
    }
    SourceLoc loc;
    std::string msg = explainOne(doc, kind, r.cls, r.desc, r.pointer, loc);
    if (msg.empty()) continue;
    specific.push_back(Finding{r.pointer, loc, msg, "schema", ""});
  }

  // 2. Missing required fields, grouping "one of A or B is required" alternatives.
  for (auto& [pointer, names] : missing) {
    const auto segs = splitPointer(pointer);
    const Json* v = valueAt(doc.body, segs);
    const std::string path = displayPath(doc.body, segs);
    const std::string prefix = path.empty() ? "" : path + ": ";
    const SourceLoc loc = segs.empty() ? doc.loc : doc.keyAt(pointer);
    const auto cands = candidatesAt(kind, doc.body, segs, Mode::AllAlternatives);
    auto when = [](const Json* node) {
      auto w = node->find("x-when");
      return w != node->end() ? " (required when " + w->get<std::string>() + ")" : std::string();
    };
    std::set<std::string> done;
    const auto& suggested = suggestedAt[pointer];
    for (const Json* c : cands) {
      if (!c->is_object()) continue;
      for (const char* key : {"oneOf", "anyOf"}) {
        auto alts = c->find(key);
        if (alts == c->end()) continue;
        std::vector<std::string> group;
        bool allMissing = true;
        for (const auto& alt : *alts) {
          const Json& a = resolve(alt);
          auto req = a.is_object() ? a.find("required") : a.end();
          if (!a.is_object() || req == a.end() || req->size() != 1 || a.size() != 1) {
            group.clear();
            break;
          }
          std::string name = (*req)[0];
          group.push_back(name);
          allMissing = allMissing && std::find(names.begin(), names.end(), name) != names.end();
        }
        if (group.size() < 2 || !allMissing) continue;
        for (const auto& g : group) done.insert(g);
        if (std::any_of(group.begin(), group.end(), [&](const std::string& g) { return suggested.count(g); }))
          continue;  // "unknown field 'selctor' (did you mean 'selector'?)" already says it
        specific.push_back(Finding{
            pointer, loc, prefix + "one of " + quotedList(group, "or") + " is required" + when(c), "schema", ""});
      }
    }
    for (const auto& name : names) {
      if (done.count(name) || suggested.count(name) || (v && v->is_object() && v->contains(name))) continue;
      std::string because;
      for (const Json* c : cands) {
        auto req = c->is_object() ? c->find("required") : c->end();
        if (!c->is_object() || req == c->end()) continue;
        if (std::find(req->begin(), req->end(), Json(name)) == req->end()) continue;
        because = when(c);
        if (!because.empty()) break;
      }
      specific.push_back(
          Finding{pointer, loc, prefix + "missing required field '" + name + "'" + because, "schema", ""});
    }
  }

  // 3. Type mismatches and summaries, unless something more specific explains the same value.
  auto explained = [&](const std::string& pointer) {
    auto covers = [&](const Finding& f) { return atOrBelow(f.pointer, pointer); };
    return std::any_of(specific.begin(), specific.end(), covers) ||
           std::any_of(findings.begin(), findings.end(), covers);
  };
  std::vector<Finding> general;
  for (const auto& r : raws) {
    if (r.cls != ErrClass::Type) continue;
    if (explained(r.pointer)) continue;
    SourceLoc loc;
    std::string msg = explainOne(doc, kind, r.cls, r.desc, r.pointer, loc);
    general.push_back(Finding{r.pointer, loc, msg, "schema", ""});
  }
  for (const auto& r : raws) {
    if (r.cls != ErrClass::Summary) continue;
    if (explained(r.pointer) ||
        std::any_of(general.begin(), general.end(), [&](const Finding& f) { return atOrBelow(f.pointer, r.pointer); }))
      continue;
    SourceLoc loc;
    std::string msg = explainOne(doc, kind, r.cls, r.desc, r.pointer, loc);
    general.push_back(Finding{r.pointer, loc, msg, "schema", ""});
  }
  findings.insert(findings.end(), specific.begin(), specific.end());
  findings.insert(findings.end(), general.begin(), general.end());
}

// ================================================================================================ public API

SchemaValidator::SchemaValidator() : impl_(new Impl()) {}

SchemaValidator::~SchemaValidator() { delete impl_; }

}  // namespace vnetplan
