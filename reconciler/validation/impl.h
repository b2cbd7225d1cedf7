// The validator's insides, shared by its two halves: the walk over body + schema (walk.cpp: unknown fields,
// x-format, x-orderedRange, schema navigation) and the explainer of valijson's errors (explain.cpp).
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <regex>
#include <string>
#include <unordered_map>
#include <vector>

#include <valijson/schema.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include "reconciler/schema_validator.h"
#include "reconciler/validation/messages.h"
#include "reconciler/validation/text.h"

namespace vnetplan {

extern const char kEmbeddedSchema[];
extern const std::size_t kEmbeddedSchemaSize;

namespace validation {
inline constexpr const char* kApiVersion = "vnetplan.io/v1";
}  // namespace validation

using namespace validation;

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

}  // namespace vnetplan
