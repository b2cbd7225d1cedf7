// GCC 12 reports false positives in libstdc++ code inlined here at -O3 (-Wrestrict on std::string operator+,
// GCC PR 105651) and with sanitizers (-Wmaybe-uninitialized inside std::regex's std::function); both are compiler
// bugs in headers we do not own, and -Werror would otherwise break Release and sanitizer builds.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic ignored "-Wrestrict"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "reconciler/validation/messages.h"

#include <algorithm>
#include <cmath>

namespace vnetplan::validation {

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


}  // namespace vnetplan::validation
