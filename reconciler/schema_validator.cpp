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
//
// The parts: validation/text (pointers and message text), validation/messages (valijson's wording, classified),
// validation/walk.cpp (our own walk and schema navigation), validation/explain.cpp (messages from the schema).
// GCC 12 reports false positives in libstdc++ code inlined here at -O3 (-Wrestrict on std::string operator+,
// GCC PR 105651) and with sanitizers (-Wmaybe-uninitialized inside std::regex's std::function); both are compiler
// bugs in headers we do not own, and -Werror would otherwise break Release and sanitizer builds.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic ignored "-Wrestrict"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "reconciler/schema_validator.h"

#include <valijson/adapters/nlohmann_json_adapter.hpp>

#include <algorithm>

#include "reconciler/validation/impl.h"
#include "reconciler/validation/text.h"

namespace vnetplan {

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
    const size_t n = validation::utf8Length(v.get_ref<const std::string&>());  // characters, as JSON Schema counts
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
