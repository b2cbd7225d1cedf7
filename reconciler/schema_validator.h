// Validation of manifest documents against the JSON Schema in schema/ (compiled into the binary).
#pragma once
#include <string>
#include <vector>

#include "model/diag.h"
#include "reconciler/manifest.h"

namespace vnetplan {

class SchemaValidator {
 public:
  // Parses the embedded schema (schema/vnetplan.schema.json).
  SchemaValidator();
  ~SchemaValidator();
  SchemaValidator(const SchemaValidator&) = delete;
  SchemaValidator& operator=(const SchemaValidator&) = delete;

  // Validates one document: apiVersion, kind (unknown kind -> "did you mean"), then the kind's schema.
  // Every violation becomes one diagnostic at the offending value's (or key's) file:line:col; unknown
  // fields are reported as "unknown field 'mut' in spec (did you mean 'mtu'?)". Returns true when valid.
  bool validate(const Document& doc, Diagnostics& diags) const;

  // The raw schema text (for `vnetplan schema` / editors).
  static const std::string& schemaText();

 private:
  struct Impl;
  Impl* impl_;
};

}  // namespace vnetplan
