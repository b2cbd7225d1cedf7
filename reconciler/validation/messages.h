// What valijson says, classified: its error descriptions are matched by their wording (pinned by
// tests/unit/valijson_messages_test.cpp, so an upgrade that rewords one fails a test instead of a user), and the
// findings vnetplan reports instead.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <valijson/validation_results.hpp>

#include "model/diag.h"

namespace vnetplan::validation {


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

ErrClass classify(const std::string& d);
std::string quotedIn(const std::string& d);
std::optional<double> trailingNumber(const std::string& d);
std::vector<long long> numbersIn(const std::string& d);
bool envelopeOnly(const valijson::ValidationResults& results);
const std::map<std::string, Keyword>& keywordTable();

}  // namespace vnetplan::validation
