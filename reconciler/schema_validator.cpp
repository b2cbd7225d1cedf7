// Schema validation: valijson decides what is invalid; this file decides how to say it.
//
// valijson's errors are terse ("Value type not permitted by 'type' constraint.") and, for oneOf/anyOf/if-then,
// come as a cascade of every failed alternative followed by a summary. So each error is re-explained from the
// schema itself: the schema nodes that apply at the error's JSON pointer are collected (following $ref, allOf,
// the alternatives of oneOf/anyOf and the branch of if/then/else that the value selects), and the message is
// built from them and the value ("spec.mtu: must be between 68 and 65535 (got 70000)"). Errors that only exist
// because an alternative the user did not mean failed are dropped when a more specific error explains the same
// value. Unknown fields are found by our own walk over body + schema, so that every unknown key (valijson stops
// at the first) is reported at its key with a "did you mean". The same walk applies the schema's x-format
// (exact address syntax) and x-orderedRange ("FIRST-LAST" with FIRST <= LAST) keywords, which valijson ignores.

// GCC 12 reports false positives in libstdc++ code inlined here at -O3 (-Wrestrict on std::string operator+,
// GCC PR 105651) and with sanitizers (-Wmaybe-uninitialized inside std::regex's std::function); both are compiler
// bugs in headers we do not own, and -Werror would otherwise break Release and sanitizer builds.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic ignored "-Wrestrict"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "reconciler/schema_validator.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <stdexcept>
#include <unordered_map>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

namespace vnetplan {

extern const char kEmbeddedSchema[];
extern const std::size_t kEmbeddedSchemaSize;

namespace {

constexpr const char* kApiVersion = "vnetplan.io/v1";

// ------------------------------------------------------------------------------------------------ pointers & text

std::vector<std::string> splitPointer(const std::string& pointer) {
  std::vector<std::string> out;
  if (pointer.empty()) return out;
  size_t pos = 1;
  while (true) {
    size_t next = pointer.find('/', pos);
    std::string raw = pointer.substr(pos, next == std::string::npos ? std::string::npos : next - pos);
    std::string seg;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '~' && i + 1 < raw.size() && (raw[i + 1] == '0' || raw[i + 1] == '1')) {
        seg += raw[i + 1] == '0' ? '~' : '/';
        ++i;
      } else {
        seg += raw[i];
      }
    }
    out.push_back(std::move(seg));
    if (next == std::string::npos) break;
    pos = next + 1;
  }
  return out;
}

bool isIndex(const std::string& s) {
  return !s.empty() && s.size() < 10 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The child of `v` named by one pointer segment, or nullptr.
const Json* childOf(const Json* v, const std::string& seg) {
  if (!v) return nullptr;
  if (v->is_object()) {
    auto it = v->find(seg);
    return it == v->end() ? nullptr : &*it;
  }
  if (v->is_array() && isIndex(seg)) {
    size_t i = std::stoul(seg);
    return i < v->size() ? &(*v)[i] : nullptr;
  }
  return nullptr;
}

const Json* valueAt(const Json& body, const std::vector<std::string>& segs) {
  const Json* v = &body;
  for (const auto& s : segs) v = childOf(v, s);
  return v;
}

// User text echoed in a message: shortened, with control characters escaped so a diagnostic stays one line.
std::string truncated(const std::string& s, size_t max = 60) {
  std::string out;
  size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80 && ++n > max) {
      out += "...";
      break;
    }
    if (c == '\n')
      out += "\\n";
    else if (c == '\t')
      out += "\\t";
    else if (c == '\r')
      out += "\\r";
    else if (c < 0x20 || c == 0x7f) {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

bool isPlainKey(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

// "spec.vlan.trunk[0]", "metadata.labels['app.kubernetes.io/name']"; "" for the document itself.
std::string displayPath(const Json& body, const std::vector<std::string>& segs) {
  std::string out;
  const Json* v = &body;
  for (const auto& s : segs) {
    if (v && v->is_array()) {
      out += "[" + s + "]";
    } else if (isPlainKey(s)) {
      out += (out.empty() ? "" : ".") + s;
    } else {
      out += "['" + truncated(s) + "']";
    }
    v = childOf(v, s);
  }
  return out;
}

std::string formatNumber(double d) {
  if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e15) return std::to_string(static_cast<long long>(d));
  std::string s = std::to_string(d);
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

// How a value reads inside "(got ...)".
std::string gotValue(const Json& v) {
  switch (v.type()) {
    case Json::value_t::string:
      return "'" + truncated(v.get<std::string>()) + "'";
    case Json::value_t::array:
      return "a list";
    case Json::value_t::object:
      return "a mapping";
    case Json::value_t::null:
      return "an empty value";
    default:
      return truncated(v.dump());
  }
}

// Like gotValue, naming the type too: for type mismatches ("string '1500'").
std::string gotTyped(const Json& v) {
  switch (v.type()) {
    case Json::value_t::string:
      return "string '" + truncated(v.get<std::string>()) + "'";
    case Json::value_t::boolean:
      return "boolean " + v.dump();
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return "integer " + v.dump();
    case Json::value_t::number_float:
      return "number " + v.dump();
    default:
      return gotValue(v);
  }
}

std::string quotedList(const std::vector<std::string>& names, const char* conj) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? std::string(" ") + conj + " " : ", ";
    out += "'" + names[i] + "'";
  }
  return out;
}

std::string typePhrase(const std::string& t) {
  if (t == "integer") return "an integer";
  if (t == "number") return "a number";
  if (t == "string") return "a string";
  if (t == "boolean") return "true or false";
  if (t == "object") return "a mapping";
  if (t == "array") return "a list";
  if (t == "null") return "null";
  return t;
}

bool valueHasType(const Json& v, const std::string& t) {
  if (t == "integer") return v.is_number_integer();  // strict, like valijson: 1.0 is not an integer
  if (t == "number") return v.is_number();
  if (t == "string") return v.is_string();
  if (t == "boolean") return v.is_boolean();
  if (t == "object") return v.is_object();
  if (t == "array") return v.is_array();
  if (t == "null") return v.is_null();
  return false;
}

size_t utf8Length(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

// "10-20" -> {10, 20}
bool parseRange(const std::string& s, long long& a, long long& b) {
  auto dash = s.find('-');
  if (dash == std::string::npos || dash == 0 || dash + 1 >= s.size()) return false;
  try {
    a = std::stoll(s.substr(0, dash));
    b = std::stoll(s.substr(dash + 1));
  } catch (...) {
    return false;
  }
  return true;
}

bool checkAddressFormat(const std::string& format, const std::string& s) {
  unsigned char buf[16];
  auto ip4 = [&](const std::string& a) { return inet_pton(AF_INET, a.c_str(), buf) == 1; };
  auto ip6 = [&](const std::string& a) { return inet_pton(AF_INET6, a.c_str(), buf) == 1; };
  auto prefixOk = [](const std::string& p, int max) {
    if (p.empty() || p.size() > 3 || !isIndex(p)) return false;
    return std::stoi(p) <= max;
  };
  if (format == "ip") return ip4(s) || ip6(s);
  if (format == "ipv4") return ip4(s);
  auto slash = s.find('/');
  if (slash == std::string::npos) return false;
  std::string addr = s.substr(0, slash), prefix = s.substr(slash + 1);
  if (format == "cidr") return (ip4(addr) && prefixOk(prefix, 32)) || (ip6(addr) && prefixOk(prefix, 128));
  if (format == "ipv4cidr") return ip4(addr) && prefixOk(prefix, 32);
  return true;  // unknown formats are not enforced
}

// -------------------------------------------------------------------------------------------------- findings

struct Finding {
  std::string pointer;     // where the problem is
  SourceLoc loc;           // where to report it
  std::string message;     // complete message
  std::string code;        // diagnostic code
  std::string suggestion;  // for unknown fields: the suggested name
};

// Classes of valijson error descriptions.
enum class ErrClass {
  Type,
  Enum,
  Const,
  Pattern,
  Maximum,
  Minimum,
  MaxLength,
  MinLength,
  MaxItems,
  MinItems,
  MaxProperties,
  MinProperties,
  Unique,
  Required,
  Dependency,
  Not,
  OneOfMany,
  AdditionalProperty,
  MultipleOf,
  Format,
  Summary
};

ErrClass classify(const std::string& d) {
  auto starts = [&](const char* p) { return d.rfind(p, 0) == 0; };
  if (starts("Value type not permitted")) return ErrClass::Type;
  if (starts("Failed to match against any enum")) return ErrClass::Enum;
  if (starts("Failed to match expected value set by 'const'")) return ErrClass::Const;
  if (starts("Failed to match regex")) return ErrClass::Pattern;
  if (starts("Expected number less than")) return ErrClass::Maximum;
  if (starts("Expected number greater than")) return ErrClass::Minimum;
  if (starts("String should be no more than")) return ErrClass::MaxLength;
  if (starts("String should be no fewer than")) return ErrClass::MinLength;
  if (starts("Array should contain no more than")) return ErrClass::MaxItems;
  if (starts("Array should contain no fewer than")) return ErrClass::MinItems;
  if (starts("Object should have no more than")) return ErrClass::MaxProperties;
  if (starts("Object should have no fewer than")) return ErrClass::MinProperties;
  if (starts("Elements at indexes")) return ErrClass::Unique;
  if (starts("Missing required property")) return ErrClass::Required;
  if (starts("Missing dependency")) return ErrClass::Dependency;
  if (starts("Target should not validate against schema specified in 'not'")) return ErrClass::Not;
  if (starts("Failed to validate against exactly one")) return ErrClass::OneOfMany;
  if (starts("Object contains a property that could not be validated")) return ErrClass::AdditionalProperty;
  if (starts("Value should be a multiple of")) return ErrClass::MultipleOf;
  if (starts("String should be a valid")) return ErrClass::Format;
  return ErrClass::Summary;
}

// The text between the first pair of single quotes ("Missing required property 'name'." -> "name").
std::string quotedIn(const std::string& d) {
  auto a = d.find('\'');
  if (a == std::string::npos) return "";
  auto b = d.rfind('\'');
  return b > a ? d.substr(a + 1, b - a - 1) : "";
}

// The last number in a description ("Expected number less than or equal to 65535.000000").
std::optional<double> trailingNumber(const std::string& d) {
  auto end = d.find_last_of("0123456789");
  if (end == std::string::npos) return std::nullopt;
  auto start = d.find_last_not_of("0123456789.-", end);
  start = start == std::string::npos ? 0 : start + 1;
  try {
    return std::stod(d.substr(start, end - start + 1));
  } catch (...) {
    return std::nullopt;
  }
}

// The unsigned integers in a description, in order ("Elements at indexes #0 and #2 ..." -> {0, 2}).
std::vector<long long> numbersIn(const std::string& d) {
  std::vector<long long> out;
  for (size_t i = 0; i < d.size();) {
    if (d[i] < '0' || d[i] > '9') {
      ++i;
      continue;
    }
    long long n = 0;
    for (; i < d.size() && d[i] >= '0' && d[i] <= '9'; ++i) n = n < (1LL << 50) ? n * 10 + (d[i] - '0') : n;
    out.push_back(n);
  }
  return out;
}

// True when every concrete error is about apiVersion/kind (which are reported before the schema runs), so that
// the summaries valijson adds at the document root have nothing left to explain.
bool envelopeOnly(const valijson::ValidationResults& results) {
  for (const auto& e : results) {
    ErrClass cls = classify(e.description);
    if (cls == ErrClass::Summary) continue;
    bool envelope = (e.context.size() == 2 && (e.context[1] == "[apiVersion]" || e.context[1] == "[kind]")) ||
                    (e.context.size() == 1 && cls == ErrClass::Required &&
                     (quotedIn(e.description) == "apiVersion" || quotedIn(e.description) == "kind"));
    if (!envelope) return false;
  }
  return true;
}

// The assertion keywords our boolean matcher understands (others, like annotations, are ignored).
enum class Keyword {
  Type,
  Const,
  Enum,
  Minimum,
  Maximum,
  ExclusiveMinimum,
  ExclusiveMaximum,
  MultipleOf,
  MinLength,
  MaxLength,
  Pattern,
  Required,
  MinProperties,
  MaxProperties,
  MinItems,
  MaxItems,
  UniqueItems,
  Properties,
  AdditionalProperties,
  Items,
  Dependencies,
  AllOf,
  AnyOf,
  OneOf,
  Not,
  If
};

const std::map<std::string, Keyword>& keywordTable() {
  static const std::map<std::string, Keyword> kTable{
      {"type", Keyword::Type},
      {"const", Keyword::Const},
      {"enum", Keyword::Enum},
      {"minimum", Keyword::Minimum},
      {"maximum", Keyword::Maximum},
      {"exclusiveMinimum", Keyword::ExclusiveMinimum},
      {"exclusiveMaximum", Keyword::ExclusiveMaximum},
      {"multipleOf", Keyword::MultipleOf},
      {"minLength", Keyword::MinLength},
      {"maxLength", Keyword::MaxLength},
      {"pattern", Keyword::Pattern},
      {"required", Keyword::Required},
      {"minProperties", Keyword::MinProperties},
      {"maxProperties", Keyword::MaxProperties},
      {"minItems", Keyword::MinItems},
      {"maxItems", Keyword::MaxItems},
      {"uniqueItems", Keyword::UniqueItems},
      {"properties", Keyword::Properties},
      {"additionalProperties", Keyword::AdditionalProperties},
      {"items", Keyword::Items},
      {"dependencies", Keyword::Dependencies},
      {"allOf", Keyword::AllOf},
      {"anyOf", Keyword::AnyOf},
      {"oneOf", Keyword::OneOf},
      {"not", Keyword::Not},
      {"if", Keyword::If},
  };
  return kTable;
}

}  // namespace

// ======================================================================================================= Impl

struct SchemaValidator::Impl {
  Json schema;
  std::vector<std::string> kindNames;
  std::map<std::string, Json> wrappers;  // per kind: {"$ref": "#/definitions/K", "definitions": ...}
  std::map<std::string, std::unique_ptr<valijson::Schema>> compiled;
  std::unordered_map<std::string, std::regex> regexes;  // every "pattern" of the schema, compiled once

  // What the walk needs of each schema node, looked up once here instead of by key for every document.
  struct NodeInfo {
    std::vector<const Json*> allOf, oneOf, anyOf;  // resolved
    const Json* ifNode = nullptr;
    const Json* thenNode = nullptr;
    const Json* elseNode = nullptr;
    const Json* properties = nullptr;         // the "properties" mapping
    const Json* patternProperties = nullptr;  // the "patternProperties" mapping
    const Json* additional = nullptr;         // additionalProperties schema (resolved), if any
    bool closed = false;                      // additionalProperties: false
    const Json* items = nullptr;              // the "items" keyword (schema or tuple)
    const Json* additionalItems = nullptr;
    const Json* pattern = nullptr;
    const Json* format = nullptr;                           // x-format
    bool orderedRange = false;                              // x-orderedRange
    std::vector<std::pair<Keyword, const Json*>> keywords;  // assertions, for matches()
  };
  std::unordered_map<const Json*, const Json*> refTargets;  // node with $ref -> the node it finally names
  std::unordered_map<const Json*, NodeInfo> infos;          // every object in the schema
  const NodeInfo kNoInfo{};
  const NodeInfo& info(const Json* n) const {
    auto it = infos.find(n);
    return it == infos.end() ? kNoInfo : it->second;
  }
  const Json& resolveSlow(const Json& node) const;

  // valijson::Validator caches compiled regexes but is not thread-safe; keep a small pool.
  mutable std::mutex poolMutex;
  mutable std::vector<std::unique_ptr<valijson::Validator>> pool;

  Impl();

  // ---- schema navigation
  const Json& resolve(const Json& node) const;
  bool typeCompatible(const Json& node, const Json& v) const;
  bool matches(const Json& s, const Json& v) const;
  bool patternMatches(const std::string& pattern, const std::string& s) const;
  enum class Mode { AllAlternatives, Selected };
  void expand(const Json& node, const Json* v, std::vector<const Json*>& out, Mode mode, int depth = 0) const;
  std::vector<const Json*> expandAll(const std::vector<const Json*>& nodes, const Json* v, Mode mode) const;
  std::vector<const Json*> children(const std::vector<const Json*>& expanded, const Json* parent,
                                    const std::string& seg) const;
  std::vector<const Json*> candidatesAt(const std::string& kind, const Json& body, const std::vector<std::string>& segs,
                                        Mode mode) const;

  // ---- the checks
  void walk(const Document& doc, const std::vector<const Json*>& nodes, const Json& v, const std::string& pointer,
            std::vector<Finding>& out) const;
  void explain(const Document& doc, const std::string& kind, std::vector<Finding>& findings,
               const valijson::ValidationResults& results) const;
  std::string explainOne(const Document& doc, const std::string& kind, ErrClass cls, const std::string& desc,
                         const std::string& pointer, SourceLoc& loc) const;
};

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

// ------------------------------------------------------------------------------------------- explaining errors

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

const std::string& SchemaValidator::schemaText() {
  static const std::string text(kEmbeddedSchema, kEmbeddedSchemaSize);
  return text;
}

static bool validUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t extra;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      extra = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i - 1 < extra) return false;  // truncated sequence
    for (size_t k = 1; k <= extra; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    // Overlong forms, surrogates and code points past U+10FFFF are not UTF-8 either.
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += extra + 1;
  }
  return true;
}

// What valijson can validate in reasonable time and memory, checked first: strings are valid UTF-8, names at
// most 253 characters (the schema's metadata.name), other strings at most 4096, lists at most 4096 items
// (uniqueItems compares every pair).
static bool rejectUnvalidatable(const Document& doc, const Json& v, const std::string& pointer, Diagnostics& diags) {
  constexpr size_t kMaxString = 4096, kMaxName = 253;
  bool found = false;
  if (v.is_string() && !validUtf8(v.get_ref<const std::string&>())) {
    std::string field = pointer.empty() ? "value" : pointer.substr(1);
    std::replace(field.begin(), field.end(), '/', '.');
    diags.error(doc.at(pointer), field + ": is not valid UTF-8", "schema");
    return true;
  }
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it)
      if (!validUtf8(it.key())) {
        diags.error(doc.keyAt(pointer + "/" + pointerEscape(it.key())), "a field name is not valid UTF-8",
                    "unknown-field");
        return true;
      }
  }
  if (v.is_string()) {
    const size_t limit = pointer == "/metadata/name" ? kMaxName : kMaxString;
    const size_t n = v.get_ref<const std::string&>().size();
    if (n > limit) {
      std::string field = pointer.substr(1);
      std::replace(field.begin(), field.end(), '/', '.');
      diags.error(doc.at(pointer),
                  field + ": must be at most " + std::to_string(limit) + " characters long (got " + std::to_string(n) + ")",
                  "schema");
      found = true;
    }
  } else if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (it.key().size() > kMaxString) {
        diags.error(doc.keyAt(pointer + "/" + pointerEscape(it.key())),
                    "unknown field of " + std::to_string(it.key().size()) + " characters", "unknown-field");
        found = true;
        continue;
      }
      found |= rejectUnvalidatable(doc, it.value(), pointer + "/" + pointerEscape(it.key()), diags);
    }
  } else if (v.is_array()) {
    // valijson's uniqueItems compares every pair: a huge list would take hours. No manifest list needs this many.
    constexpr size_t kMaxItems = 4096;
    if (v.size() > kMaxItems) {
      std::string field = pointer.substr(1);
      std::replace(field.begin(), field.end(), '/', '.');
      diags.error(doc.at(pointer),
                  field + ": must have at most " + std::to_string(kMaxItems) + " items (got " +
                      std::to_string(v.size()) + ")",
                  "schema");
      return true;
    }
    for (size_t i = 0; i < v.size(); ++i) found |= rejectUnvalidatable(doc, v[i], pointer + "/" + std::to_string(i), diags);
  }
  return found;
}

bool SchemaValidator::validate(const Document& doc, Diagnostics& diags) const {
  const Json& body = doc.body;
  if (!body.is_object()) {
    diags.error(doc.loc, "a manifest document must be a mapping with apiVersion, kind, metadata and spec",
                "manifest-shape");
    return false;
  }
  bool ok = true;

  auto api = body.find("apiVersion");
  if (api == body.end()) {
    diags.error(doc.loc, std::string("missing required field 'apiVersion' (apiVersion: ") + kApiVersion + ")",
                "api-version");
    ok = false;
  } else if (!api->is_string() || *api != kApiVersion) {
    diags.error(doc.at("/apiVersion"),
                std::string("apiVersion: must be '") + kApiVersion + "' (got " + gotValue(*api) + ")", "api-version");
    ok = false;
  }

  std::string kinds;
  for (const auto& k : impl_->kindNames) kinds += (kinds.empty() ? "" : ", ") + k;
  auto kindIt = body.find("kind");
  if (kindIt == body.end()) {
    diags.error(doc.loc, "missing required field 'kind' (one of " + kinds + ")", "unknown-kind");
    return false;
  }
  if (!kindIt->is_string()) {
    diags.error(doc.at("/kind"), "kind: must be a string, one of " + kinds + " (got " + gotTyped(*kindIt) + ")",
                "unknown-kind");
    return false;
  }
  const std::string kind = kindIt->get<std::string>();
  auto compiled = impl_->compiled.find(kind);
  if (compiled == impl_->compiled.end()) {
    std::string hint = closestMatch(kind, impl_->kindNames);
    diags.error(doc.at("/kind"),
                "unknown kind '" + truncated(kind) + "'" +
                    (hint.empty() ? " (expected one of " + kinds + ")" : " (did you mean '" + hint + "'?)"),
                "unknown-kind");
    return false;
  }

  // Over-long strings never reach valijson: its pattern checks use std::regex, which recurses per character.
  if (rejectUnvalidatable(doc, body, "", diags)) return false;

  std::vector<Finding> findings;
  impl_->walk(doc, {&impl_->schema.at("definitions").at(kind)}, body, "", findings);

  valijson::ValidationResults results;
  bool valid;
  {
    std::unique_ptr<valijson::Validator> validator;
    {
      std::lock_guard<std::mutex> lock(impl_->poolMutex);
      if (!impl_->pool.empty()) {
        validator = std::move(impl_->pool.back());
        impl_->pool.pop_back();
      }
    }
    if (!validator) validator = std::make_unique<valijson::Validator>(valijson::Validator::kStrongTypes);
    valijson::adapters::NlohmannJsonAdapter adapter(body);
    valid = validator->validate(*compiled->second, adapter, &results);
    std::lock_guard<std::mutex> lock(impl_->poolMutex);
    impl_->pool.push_back(std::move(validator));
  }
  if (!valid) impl_->explain(doc, kind, findings, results);

  std::set<std::pair<std::string, std::string>> seen;
  for (auto& f : findings) {
    if (!seen.insert({f.loc.str(), f.message}).second) continue;
    diags.error(std::move(f.loc), std::move(f.message), f.code);
    ok = false;
  }
  if (!valid && findings.empty() && !envelopeOnly(results)) {
    // valijson found a problem we could not explain; never let it pass silently.
    for (const auto& e : results) {
      diags.error(doc.loc, e.description, "schema");
      ok = false;
    }
  }
  return ok;
}

}  // namespace vnetplan
