// Pins every class of valijson error description the validator recognises by its wording: each case makes
// valijson report one kind of failure and checks that classify() files it under the right class. If a valijson
// upgrade rewords a message, this fails here, not in a user's face as a vague "this value is not allowed".
#include <gtest/gtest.h>

#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include "reconciler/validation/messages.h"

using namespace vnetplan;
using namespace vnetplan::validation;
using Json = nlohmann::json;

namespace {

// Every error description valijson gives for `value` against `schema`.
std::vector<std::string> descriptions(const Json& schemaJson, const Json& value) {
  valijson::Schema schema;
  valijson::SchemaParser parser;
  valijson::adapters::NlohmannJsonAdapter schemaAdapter(schemaJson);
  parser.populateSchema(schemaAdapter, schema);
  valijson::Validator validator;
  valijson::ValidationResults results;
  valijson::adapters::NlohmannJsonAdapter target(value);
  validator.validate(schema, target, &results);
  std::vector<std::string> out;
  valijson::ValidationResults::Error e;
  while (results.popError(e)) out.push_back(e.description);
  return out;
}

struct Case {
  const char* name;
  Json schema;
  Json value;
  ErrClass expected;
};

}  // namespace

TEST(ValijsonMessages, EveryClassIsRecognisedByItsWording) {
  const std::vector<Case> cases{
      {"type", {{"type", "string"}}, 5, ErrClass::Type},
      {"enum", {{"enum", {"a", "b"}}}, "c", ErrClass::Enum},
      {"const", {{"const", "x"}}, "y", ErrClass::Const},
      {"pattern", {{"type", "string"}, {"pattern", "^a+$"}}, "b", ErrClass::Pattern},
      {"maximum", {{"maximum", 10}}, 11, ErrClass::Maximum},
      {"minimum", {{"minimum", 10}}, 9, ErrClass::Minimum},
      {"maxLength", {{"type", "string"}, {"maxLength", 2}}, "abc", ErrClass::MaxLength},
      {"minLength", {{"type", "string"}, {"minLength", 2}}, "a", ErrClass::MinLength},
      {"maxItems", {{"type", "array"}, {"maxItems", 1}}, Json::array({1, 2}), ErrClass::MaxItems},
      {"minItems", {{"type", "array"}, {"minItems", 2}}, Json::array({1}), ErrClass::MinItems},
      {"maxProperties", {{"type", "object"}, {"maxProperties", 1}}, {{"a", 1}, {"b", 2}}, ErrClass::MaxProperties},
      {"minProperties", {{"type", "object"}, {"minProperties", 2}}, {{"a", 1}}, ErrClass::MinProperties},
      {"uniqueItems", {{"type", "array"}, {"uniqueItems", true}}, Json::array({1, 1}), ErrClass::Unique},
      {"required", {{"type", "object"}, {"required", {"a"}}}, Json::object(), ErrClass::Required},
      {"dependencies", {{"type", "object"}, {"dependencies", {{"a", {"b"}}}}}, {{"a", 1}}, ErrClass::Dependency},
      {"not", {{"not", Json::object()}}, 1, ErrClass::Not},
      {"oneOf (several match)", {{"oneOf", {Json::object(), Json::object()}}}, 1, ErrClass::OneOfMany},
      {"additionalProperties",
       {{"type", "object"}, {"properties", {{"a", Json::object()}}}, {"additionalProperties", false}},
       {{"b", 1}},
       ErrClass::AdditionalProperty},
      {"multipleOf", {{"multipleOf", 3}}, 4, ErrClass::MultipleOf},
  };
  for (const auto& c : cases) {
    auto ds = descriptions(c.schema, c.value);
    ASSERT_FALSE(ds.empty()) << c.name << ": valijson reported nothing";
    bool found = false;
    for (const auto& d : ds) found = found || classify(d) == c.expected;
    std::string all;
    for (const auto& d : ds) all += "\n  '" + d + "'";
    EXPECT_TRUE(found) << c.name << ": no description valijson gave is recognised as its class:" << all;
  }
}

TEST(ValijsonMessages, SummariesAreNotMistakenForAFailure) {
  // anyOf with no match: valijson adds a summary line after the alternatives' own errors.
  auto ds = descriptions({{"anyOf", {{{"type", "string"}}, {{"type", "boolean"}}}}}, 1);
  ASSERT_FALSE(ds.empty());
  bool summary = false;
  for (const auto& d : ds) summary = summary || classify(d) == ErrClass::Summary;
  EXPECT_TRUE(summary);
}
