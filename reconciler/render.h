// Renderings of plans and drift reports: text (+ - ~ -/+), JSON (Terraform resource_changes shape),
// markdown (for merge-request comments), and drift as JUnit XML / Prometheus text.
#pragma once
#include <chrono>
#include <string>

#include "reconciler/plan.h"

namespace vnetplan {

struct RenderOptions {
  bool color = false;
  bool showNoOps = false;  // list up-to-date resources too
};

std::string renderPlanText(const Plan& plan, const RenderOptions& opts = {});
std::string renderPlanMarkdown(const Plan& plan);
std::string renderPlanJson(const Plan& plan);  // pretty JSON, same document as --out

std::string renderDriftText(const Plan& plan, const RenderOptions& opts = {});
std::string renderDriftJson(const Plan& plan);
std::string renderDriftJunit(const Plan& plan);
// Node-exporter textfile format: a 0/1 series per resource, targets up, pending changes and the run's time.
std::string renderDriftPrometheus(const Plan& plan, std::chrono::system_clock::time_point now);

// "Plan: 2 to add, 1 to change, 0 to destroy, 1 to replace."
std::string planSummary(const Plan& plan);

}  // namespace vnetplan
