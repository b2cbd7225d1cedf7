// The command-line interface: parses arguments and runs one subcommand. Returns the process exit code.
#pragma once

namespace vnetplan {
class ProviderRegistry;
}

namespace vnetplan::cli {
int run(int argc, char** argv);
// The same with a given set of providers (tests run the whole CLI in-process against a fake provider).
int run(int argc, char** argv, const ProviderRegistry& providers);
}  // namespace vnetplan::cli
