// vnetplan entry point: everything lives in the core library (cli/app.cpp).
#include "cli/app.h"

int main(int argc, char** argv) { return vnetplan::cli::run(argc, argv); }
