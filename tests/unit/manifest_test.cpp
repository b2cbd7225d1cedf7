#include <gtest/gtest.h>

#include "reconciler/manifest.h"

using namespace vnetplan;

TEST(Manifest, ConvertsYamlCoreScalarsAndKeepsLocations) {
  Diagnostics diags;
  auto docs = loadManifestText(
      "apiVersion: vnetplan.io/v1\nkind: Switch\nmetadata:\n  name: br0\nspec:\n  mtu: 9000\n  stp: false\n"
      "  name: '123'\n  ratio: 1.5\n  none: ~\n  list: [a, 2]\n",
      "m.yaml", diags);
  ASSERT_FALSE(diags.hasErrors()) << diags.render();
  ASSERT_EQ(docs.size(), 1u);
  const Json& spec = docs[0].body["spec"];
  EXPECT_EQ(spec["mtu"], 9000);
  EXPECT_EQ(spec["stp"], false);
  EXPECT_EQ(spec["name"], "123");  // quoted stays a string
  EXPECT_DOUBLE_EQ(spec["ratio"].get<double>(), 1.5);
  EXPECT_TRUE(spec["none"].is_null());
  EXPECT_EQ(spec["list"][1], 2);
  EXPECT_EQ(docs[0].at("/spec/mtu").str(), "m.yaml:6:8");
  EXPECT_EQ(docs[0].keyAt("/spec/mtu").str(), "m.yaml:6:3");
  EXPECT_EQ(docs[0].at("/spec/list/1").str(), "m.yaml:11:13");
}

TEST(Manifest, MultipleDocumentsAndEmptyOnes) {
  Diagnostics diags;
  auto docs = loadManifestText("a: 1\n---\n---\nb: 2\n---\n", "m.yaml", diags);
  ASSERT_FALSE(diags.hasErrors()) << diags.render();
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[1].index, 2);
  EXPECT_EQ(docs[1].loc.line, 4);
}

TEST(Manifest, SyntaxErrorHasLocation) {
  Diagnostics diags;
  auto docs = loadManifestText("a: [1, 2\nb: 3\n", "bad.yaml", diags);
  EXPECT_TRUE(diags.hasErrors());
  ASSERT_EQ(diags.items().size(), 1u);
  EXPECT_EQ(diags.items()[0].loc.file, "bad.yaml");
  EXPECT_GT(diags.items()[0].loc.line, 0);
}

TEST(Manifest, DuplicateKeyIsAnError) {
  Diagnostics diags;
  loadManifestText("a: 1\nb: 2\na: 3\n", "d.yaml", diags);
  ASSERT_TRUE(diags.hasErrors());
  EXPECT_NE(diags.render().find("d.yaml:3:1: error: duplicate key 'a' (first at d.yaml:1:1)"), std::string::npos)
      << diags.render();
}

TEST(Manifest, AnchorBombIsRefused) {
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  char prev = 'a';
  for (char c = 'b'; c <= 'j'; ++c) {
    bomb += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 10; ++i) bomb += std::string(i ? ", *" : "*") + prev;
    bomb += "]\n";
    prev = c;
  }
  Diagnostics diags;
  auto docs = loadManifestText(bomb, "bomb.yaml", diags);
  EXPECT_TRUE(docs.empty());
  EXPECT_NE(diags.render().find("anchor bomb"), std::string::npos) << diags.render();
}

TEST(Manifest, DeepNestingIsRefused) {
  std::string deep(200, '[');
  deep += std::string(200, ']');
  Diagnostics diags;
  auto docs = loadManifestText("a: " + deep + "\n", "deep.yaml", diags);
  EXPECT_TRUE(docs.empty());
  EXPECT_TRUE(diags.hasErrors());
}

TEST(Manifest, NonMappingDocumentIsAnError) {
  Diagnostics diags;
  auto docs = loadManifestText("- just\n- a list\n", "l.yaml", diags);
  EXPECT_TRUE(docs.empty());
  EXPECT_NE(diags.render().find("l.yaml:1:1: error: a manifest document must be a mapping"), std::string::npos)
      << diags.render();
}

TEST(Manifest, MissingPathIsAnError) {
  Diagnostics diags;
  loadManifests({"/nonexistent/vnetplan/x.yaml"}, diags);
  EXPECT_TRUE(diags.hasErrors());
}

TEST(Manifest, LargeFilesParsedInChunksKeepExactLocationsAndOrder) {
  // Over the parallel threshold: the file is split at "---" lines and parsed on several threads.
  std::string text;
  int line = 1, badLine = 0;
  const int docs = 6000;
  for (int i = 0; i < docs; ++i) {
    text += "---\n";
    ++line;
    text += "kind: Switch\nmetadata: {name: br" + std::to_string(i) + "}\n";
    line += 2;
    if (i == 4321) {
      text += "kind: again\n";  // duplicate key, deep inside the file
      badLine = line;
      ++line;
    }
    text += "spec: {mtu: " + std::to_string(1000 + i) + "}\n";
    ++line;
  }
  ASSERT_GT(text.size(), 32u * 1024u);
  Diagnostics diags;
  auto parsed = loadManifestText(text, "big.yaml", diags);
  ASSERT_EQ(parsed.size(), static_cast<size_t>(docs));
  for (int i = 0; i < docs; ++i) {
    ASSERT_EQ(parsed[static_cast<size_t>(i)].index, i);
    ASSERT_EQ(parsed[static_cast<size_t>(i)].body["spec"]["mtu"], 1000 + i);
  }
  EXPECT_EQ(parsed[5000].loc.line, 1 + 5000 * 4 + 1 + 1);  // after 5,000 docs (+1 extra line), below its ---
  EXPECT_EQ(parsed[5000].at("/spec/mtu").line, parsed[5000].loc.line + 2);
  ASSERT_EQ(diags.items().size(), 1u) << diags.render();
  EXPECT_EQ(diags.items()[0].loc.line, badLine);
  EXPECT_NE(diags.render().find("duplicate key 'kind'"), std::string::npos);
}

TEST(Manifest, StrayFlowCommaAtStreamStartIsASyntaxErrorNotAHang) {
  // yaml-cpp reports document after document at the same position for this input; found by the fuzzer.
  Diagnostics diags;
  auto docs = loadManifestText(", apiVersion: vnetplan.io/v1\nkind: Target\n", "comma.yaml", diags);
  EXPECT_TRUE(docs.empty());
  ASSERT_TRUE(diags.hasErrors());
  EXPECT_NE(diags.render().find("comma.yaml:1:1: error: YAML syntax error"), std::string::npos) << diags.render();
}
