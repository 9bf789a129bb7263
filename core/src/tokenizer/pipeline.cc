// Normalizers, pre-tokenizers, post-processors and decoders, with the semantics of the Rust
// tokenizers library for the options that tokenizer.json files of BPE models use.
#include "tokenizer/pipeline.h"

#include <algorithm>
#include <utility>

#include "tokenizer/regex.h"
#include "tokenizer/unicode_text.h"

namespace hfchain::tokenizer_detail {

namespace {

using nlohmann::json;
using Ranges = std::vector<std::pair<std::size_t, std::size_t>>;

std::string typeOf(const json& config) {
  if (!config.is_object() || !config.contains("type") || !config["type"].is_string()) return "";
  return config["type"].get<std::string>();
}

std::string stringField(const json& config, const char* name, std::string fallback) {
  if (config.contains(name) && config[name].is_string()) return config[name].get<std::string>();
  return fallback;
}

bool boolField(const json& config, const char* name, bool fallback) {
  if (config.contains(name) && config[name].is_boolean()) return config[name].get<bool>();
  return fallback;
}

// Builds the regex of a {"String": ...} or {"Regex": ...} pattern object.
std::unique_ptr<Regex> makePattern(const json& pattern, std::string& error) {
  if (pattern.is_object() && pattern.contains("String") && pattern["String"].is_string()) {
    return Regex::compile(Regex::escape(pattern["String"].get<std::string>()), error);
  }
  if (pattern.is_object() && pattern.contains("Regex") && pattern["Regex"].is_string()) {
    return Regex::compile(pattern["Regex"].get<std::string>(), error);
  }
  error = "pattern must be an object with a String or Regex field";
  return nullptr;
}

std::string replaceAll(const Regex& regex, std::string_view text, std::string_view content) {
  thread_local Ranges matches;
  matches.clear();
  regex.findAll(text, matches);
  if (matches.empty()) return std::string(text);
  std::string out;
  out.reserve(text.size() + matches.size() * content.size());
  std::size_t last = 0;
  for (const auto& [start, end] : matches) {
    out.append(text.substr(last, start - last));
    out.append(content);
    last = end;
  }
  out.append(text.substr(last));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Normalizers

class NormalFormNormalizer : public Normalizer {
 public:
  explicit NormalFormNormalizer(NormalForm form) : form_(form) {}
  void normalize(std::string& text) const override {
    // NOTE: ICU failure leaves the text unchanged; ICU's data is built in, so it does not fail
    // on valid UTF-8 in practice.
    normalizeUnicode(form_, text);
  }

 private:
  NormalForm form_;
};

class ReplaceNormalizer : public Normalizer {
 public:
  ReplaceNormalizer(std::unique_ptr<Regex> regex, std::string content)
      : regex_(std::move(regex)), content_(std::move(content)) {}
  void normalize(std::string& text) const override { text = replaceAll(*regex_, text, content_); }

 private:
  std::unique_ptr<Regex> regex_;
  std::string content_;
};

class PrependNormalizer : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  void normalize(std::string& text) const override {
    if (!text.empty()) text.insert(0, prefix_);
  }

 private:
  std::string prefix_;
};

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps)
      : steps_(std::move(steps)) {}
  void normalize(std::string& text) const override {
    for (const auto& step : steps_) step->normalize(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

// ---------------------------------------------------------------------------------------------
// Pre-tokenizers

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// Applies a split behaviour to the ranges of one piece, with the rules of the Rust library's
// NormalizedString::split: matches and the gaps between them are first listed in order, then
// combined according to the behaviour.
void splitPiece(const Piece& piece, const Ranges& matches, SplitBehavior behavior, bool invert,
                std::vector<Piece>& out) {
  struct Part {
    std::size_t start;
    std::size_t end;
    bool is_match;
  };
  std::vector<Part> parts;
  std::size_t last = 0;
  for (const auto& [start, end] : matches) {
    if (last != start) parts.push_back({last, start, invert});
    parts.push_back({start, end, !invert});
    last = end;
  }
  if (last != piece.text.size()) parts.push_back({last, piece.text.size(), invert});
  if (piece.text.empty()) parts.push_back({0, 0, invert});

  std::vector<Part> combined;
  switch (behavior) {
    case SplitBehavior::kIsolated:
      combined = parts;
      break;
    case SplitBehavior::kRemoved:
      for (const Part& part : parts) {
        if (!part.is_match) combined.push_back(part);
      }
      break;
    case SplitBehavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const Part& part : parts) {
        if (part.is_match && !previous_match && !combined.empty()) {
          combined.back().end = part.end;
        } else {
          combined.push_back(part);
        }
        previous_match = part.is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool previous_match = false;
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
        if (it->is_match && !previous_match && !combined.empty()) {
          combined.back().start = it->start;
        } else {
          combined.push_back(*it);
        }
        previous_match = it->is_match;
      }
      std::reverse(combined.begin(), combined.end());
      break;
    }
    case SplitBehavior::kContiguous: {
      bool previous_match = false;
      for (const Part& part : parts) {
        if (part.is_match == previous_match && !combined.empty()) {
          combined.back().end = part.end;
        } else {
          combined.push_back(part);
        }
        previous_match = part.is_match;
      }
      break;
    }
  }
  for (const Part& part : combined) {
    if (part.end == part.start) continue;
    out.push_back(Piece{piece.text.substr(part.start, part.end - part.start),
                        piece.at_input_start && part.start == 0});
  }
}

class SplitPreTokenizer : public PreTokenizer {
 public:
  SplitPreTokenizer(std::unique_ptr<Regex> regex, SplitBehavior behavior, bool invert)
      : regex_(std::move(regex)), behavior_(behavior), invert_(invert) {}

  void preTokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    out.reserve(pieces.size() * 4);
    thread_local Ranges matches;
    for (const Piece& piece : pieces) {
      matches.clear();
      regex_->findAll(piece.text, matches);
      if (behavior_ == SplitBehavior::kIsolated && !invert_) {
        appendIsolated(piece, matches, out);
      } else {
        splitPiece(piece, matches, behavior_, invert_, out);
      }
    }
    pieces = std::move(out);
  }

 private:
  // The common Isolated case without the intermediate list.
  static void appendIsolated(const Piece& piece, const Ranges& matches, std::vector<Piece>& out) {
    std::size_t last = 0;
    auto add = [&](std::size_t start, std::size_t end) {
      out.push_back(
          Piece{piece.text.substr(start, end - start), piece.at_input_start && start == 0});
    };
    for (const auto& [start, end] : matches) {
      if (last != start) add(last, start);
      add(start, end);
      last = end;
    }
    if (last != piece.text.size()) add(last, piece.text.size());
  }
  std::unique_ptr<Regex> regex_;
  SplitBehavior behavior_;
  bool invert_;
};

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, std::unique_ptr<Regex> gpt2_regex)
      : add_prefix_space_(add_prefix_space), gpt2_regex_(std::move(gpt2_regex)) {}

  void preTokenize(std::vector<Piece>& pieces) const override {
    if (add_prefix_space_) {
      for (Piece& piece : pieces) {
        if (!piece.text.empty() && piece.text[0] != ' ') piece.text.insert(0, " ");
      }
    }
    if (gpt2_regex_) {
      std::vector<Piece> out;
      Ranges matches;
      for (const Piece& piece : pieces) {
        matches.clear();
        gpt2_regex_->findAll(piece.text, matches);
        splitPiece(piece, matches, SplitBehavior::kIsolated, false, out);
      }
      pieces = std::move(out);
    }
    const ByteLevelAlphabet& alphabet = byteLevelAlphabet();
    std::string mapped;
    for (Piece& piece : pieces) {
      // Each byte maps to one or two UTF-8 bytes, so the output is at most twice as long.
      mapped.resize(piece.text.size() * 2);
      std::size_t length = 0;
      for (char c : piece.text) {
        const std::string& utf8 = alphabet.byte_to_utf8[static_cast<unsigned char>(c)];
        mapped[length++] = utf8[0];
        if (utf8.size() > 1) mapped[length++] = utf8[1];
      }
      mapped.resize(length);
      piece.text.swap(mapped);
    }
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> gpt2_regex_;
};

enum class PrependScheme { kAlways, kFirst, kNever };

class MetaspacePreTokenizer : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split,
                        std::unique_ptr<Regex> replacement_regex)
      : replacement_(std::move(replacement)),
        scheme_(scheme),
        split_(split),
        replacement_regex_(std::move(replacement_regex)) {}

  void preTokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    Ranges matches;
    for (Piece& piece : pieces) {
      std::string text;
      text.reserve(piece.text.size());
      for (char c : piece.text) {
        if (c == ' ') {
          text += replacement_;
        } else {
          text.push_back(c);
        }
      }
      bool prepend = scheme_ == PrependScheme::kAlways ||
                     (scheme_ == PrependScheme::kFirst && piece.at_input_start);
      if (prepend && !text.starts_with(replacement_)) text.insert(0, replacement_);
      Piece replaced{std::move(text), piece.at_input_start};
      if (!split_) {
        out.push_back(std::move(replaced));
        continue;
      }
      matches.clear();
      replacement_regex_->findAll(replaced.text, matches);
      splitPiece(replaced, matches, SplitBehavior::kMergedWithNext, false, out);
    }
    pieces = std::move(out);
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
  std::unique_ptr<Regex> replacement_regex_;
};

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps)
      : steps_(std::move(steps)) {}
  void preTokenize(std::vector<Piece>& pieces) const override {
    for (const auto& step : steps_) step->preTokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

// ---------------------------------------------------------------------------------------------
// Post-processors

class NoOpPostProcessor : public PostProcessor {
 public:
  void process(std::vector<int32_t>&, bool) const override {}
};

class TemplatePostProcessor : public PostProcessor {
 public:
  // Each item is a list of ids to insert, or empty for the sequence itself.
  explicit TemplatePostProcessor(std::vector<std::vector<int32_t>> items)
      : items_(std::move(items)) {}

  void process(std::vector<int32_t>& ids, bool add_special_tokens) const override {
    if (!add_special_tokens) return;
    std::vector<int32_t> out;
    out.reserve(ids.size() + items_.size());
    for (const auto& item : items_) {
      if (item.empty()) {
        out.insert(out.end(), ids.begin(), ids.end());
      } else {
        out.insert(out.end(), item.begin(), item.end());
      }
    }
    ids = std::move(out);
  }

 private:
  std::vector<std::vector<int32_t>> items_;
};

class SequencePostProcessor : public PostProcessor {
 public:
  explicit SequencePostProcessor(std::vector<std::unique_ptr<PostProcessor>> steps)
      : steps_(std::move(steps)) {}
  void process(std::vector<int32_t>& ids, bool add_special_tokens) const override {
    for (const auto& step : steps_) step->process(ids, add_special_tokens);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> steps_;
};

// ---------------------------------------------------------------------------------------------
// Decoders

class ByteLevelDecoder : public Decoder {
 public:
  void decodeChain(std::vector<std::string>& tokens) const override {
    // Each token maps back to bytes through the byte-level alphabet. A token with a character
    // outside the alphabet keeps its own bytes. Added tokens such as "<|eot_id|>" are ASCII, so
    // they are inside it.
    const ByteLevelAlphabet& alphabet = byteLevelAlphabet();
    std::string bytes;
    std::string token_bytes;
    for (const std::string& token : tokens) {
      token_bytes.clear();
      bool mapped = true;
      std::size_t pos = 0;
      while (pos < token.size()) {
        char32_t cp = nextCodePoint(token, pos);
        if (cp >= alphabet.code_point_to_byte.size() || alphabet.code_point_to_byte[cp] < 0) {
          mapped = false;
          break;
        }
        token_bytes.push_back(static_cast<char>(alphabet.code_point_to_byte[cp]));
      }
      bytes += mapped ? token_bytes : token;
    }
    tokens.assign(1, replaceInvalidUtf8(bytes));
  }
};

class ByteFallbackDecoder : public Decoder {
 public:
  void decodeChain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string pending;
    auto flush = [&]() {
      if (pending.empty()) return;
      if (validUtf8Prefix(pending) == pending.size()) {
        out.push_back(pending);
      } else {
        // The Rust library emits one U+FFFD per byte when the run is not valid UTF-8.
        for (std::size_t i = 0; i < pending.size(); ++i) out.emplace_back("\xEF\xBF\xBD");
      }
      pending.clear();
    };
    for (std::string& token : tokens) {
      int byte = parseByteToken(token);
      if (byte >= 0) {
        pending.push_back(static_cast<char>(byte));
        continue;
      }
      flush();
      out.push_back(std::move(token));
    }
    flush();
    tokens = std::move(out);
  }

 private:
  // Returns the byte of a "<0xAB>" token, or -1.
  static int parseByteToken(const std::string& token) {
    if (token.size() != 6 || !token.starts_with("<0x") || token[5] != '>') return -1;
    int value = 0;
    for (int i = 3; i < 5; ++i) {
      char c = token[static_cast<std::size_t>(i)];
      int digit = -1;
      if (c >= '0' && c <= '9') digit = c - '0';
      if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
      if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
      if (digit < 0) return -1;
      value = value * 16 + digit;
    }
    return value;
  }
};

class FuseDecoder : public Decoder {
 public:
  void decodeChain(std::vector<std::string>& tokens) const override {
    std::string joined;
    for (const std::string& token : tokens) joined += token;
    tokens.assign(1, std::move(joined));
  }
};

class ReplaceDecoder : public Decoder {
 public:
  ReplaceDecoder(std::unique_ptr<Regex> regex, std::string content)
      : regex_(std::move(regex)), content_(std::move(content)) {}
  void decodeChain(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) token = replaceAll(*regex_, token, content_);
  }

 private:
  std::unique_ptr<Regex> regex_;
  std::string content_;
};

class StripDecoder : public Decoder {
 public:
  StripDecoder(char32_t content, std::size_t start, std::size_t stop)
      : content_(content), start_(start), stop_(stop) {}

  void decodeChain(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) {
      std::vector<char32_t> chars;
      std::size_t pos = 0;
      while (pos < token.size()) chars.push_back(nextCodePoint(token, pos));
      std::size_t begin = 0;
      while (begin < start_ && begin < chars.size() && chars[begin] == content_) ++begin;
      std::size_t end = chars.size();
      std::size_t stripped = 0;
      while (stripped < stop_ && end > begin && chars[end - 1] == content_) {
        --end;
        ++stripped;
      }
      std::string out;
      for (std::size_t i = begin; i < end; ++i) appendUtf8(out, chars[i]);
      token = std::move(out);
    }
  }

 private:
  char32_t content_;
  std::size_t start_;
  std::size_t stop_;
};

class MetaspaceDecoder : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, PrependScheme scheme)
      : replacement_(std::move(replacement)), scheme_(scheme) {}

  void decodeChain(std::vector<std::string>& tokens) const override {
    // Like the Rust library, every replacement character of the first token is dropped (not
    // only a leading one) unless the prepend scheme is "never".
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      bool drop = i == 0 && scheme_ != PrependScheme::kNever;
      std::string out;
      std::string_view token = tokens[i];
      std::size_t pos = 0;
      while (pos < token.size()) {
        if (token.substr(pos).starts_with(replacement_)) {
          if (!drop) out.push_back(' ');
          pos += replacement_.size();
        } else {
          out.push_back(token[pos]);
          ++pos;
        }
      }
      tokens[i] = std::move(out);
    }
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
};

class SequenceDecoder : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps)
      : steps_(std::move(steps)) {}
  void decodeChain(std::vector<std::string>& tokens) const override {
    for (const auto& step : steps_) step->decodeChain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

// The pattern of the Rust library's ByteLevel pre-tokenizer when use_regex is true.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

PrependScheme readPrependScheme(const json& config, std::string& error) {
  std::string scheme = stringField(config, "prepend_scheme", "");
  if (scheme.empty()) {
    return boolField(config, "add_prefix_space", true) ? PrependScheme::kAlways
                                                       : PrependScheme::kNever;
  }
  if (scheme == "always") return PrependScheme::kAlways;
  if (scheme == "first") return PrependScheme::kFirst;
  if (scheme == "never") return PrependScheme::kNever;
  error = "unsupported Metaspace prepend_scheme '" + scheme + "'";
  return PrependScheme::kNever;
}

}  // namespace

std::unique_ptr<Normalizer> makeNormalizer(const json& config, std::string& error) {
  std::string type = typeOf(config);
  if (type == "NFC") return std::make_unique<NormalFormNormalizer>(NormalForm::kNfc);
  if (type == "NFD") return std::make_unique<NormalFormNormalizer>(NormalForm::kNfd);
  if (type == "NFKC") return std::make_unique<NormalFormNormalizer>(NormalForm::kNfkc);
  if (type == "NFKD") return std::make_unique<NormalFormNormalizer>(NormalForm::kNfkd);
  if (type == "Prepend") {
    return std::make_unique<PrependNormalizer>(stringField(config, "prepend", ""));
  }
  if (type == "Replace") {
    auto regex = makePattern(config.value("pattern", json()), error);
    if (!regex) {
      error = "Replace normalizer: " + error;
      return nullptr;
    }
    return std::make_unique<ReplaceNormalizer>(std::move(regex),
                                               stringField(config, "content", ""));
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (const json& step : config.value("normalizers", json::array())) {
      auto normalizer = makeNormalizer(step, error);
      if (!normalizer) return nullptr;
      steps.push_back(std::move(normalizer));
    }
    return std::make_unique<SequenceNormalizer>(std::move(steps));
  }
  error = "unsupported normalizer type '" + type + "'";
  return nullptr;
}

std::unique_ptr<PreTokenizer> makePreTokenizer(const json& config, std::string& error) {
  std::string type = typeOf(config);
  if (type == "Split") {
    auto regex = makePattern(config.value("pattern", json()), error);
    if (!regex) {
      error = "Split pre-tokenizer: " + error;
      return nullptr;
    }
    std::string behavior_name = stringField(config, "behavior", "");
    SplitBehavior behavior;
    if (behavior_name == "Removed") {
      behavior = SplitBehavior::kRemoved;
    } else if (behavior_name == "Isolated") {
      behavior = SplitBehavior::kIsolated;
    } else if (behavior_name == "MergedWithPrevious") {
      behavior = SplitBehavior::kMergedWithPrevious;
    } else if (behavior_name == "MergedWithNext") {
      behavior = SplitBehavior::kMergedWithNext;
    } else if (behavior_name == "Contiguous") {
      behavior = SplitBehavior::kContiguous;
    } else {
      error = "unsupported Split behavior '" + behavior_name + "'";
      return nullptr;
    }
    return std::make_unique<SplitPreTokenizer>(std::move(regex), behavior,
                                               boolField(config, "invert", false));
  }
  if (type == "ByteLevel") {
    std::unique_ptr<Regex> regex;
    if (boolField(config, "use_regex", true)) {
      regex = Regex::compile(kGpt2Pattern, error);
      if (!regex) return nullptr;
    }
    return std::make_unique<ByteLevelPreTokenizer>(boolField(config, "add_prefix_space", true),
                                                   std::move(regex));
  }
  if (type == "Metaspace") {
    std::string replacement = stringField(config, "replacement", "\xE2\x96\x81");
    PrependScheme scheme = readPrependScheme(config, error);
    if (!error.empty()) return nullptr;
    auto regex = Regex::compile(Regex::escape(replacement), error);
    if (!regex) return nullptr;
    return std::make_unique<MetaspacePreTokenizer>(
        replacement, scheme, boolField(config, "split", true), std::move(regex));
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (const json& step : config.value("pretokenizers", json::array())) {
      auto pre_tokenizer = makePreTokenizer(step, error);
      if (!pre_tokenizer) return nullptr;
      steps.push_back(std::move(pre_tokenizer));
    }
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  error = "unsupported pre-tokenizer type '" + type + "'";
  return nullptr;
}

std::unique_ptr<PostProcessor> makePostProcessor(const json& config, std::string& error) {
  std::string type = typeOf(config);
  if (type == "ByteLevel") {
    // With ids only, the byte-level post-processor changes nothing: it adjusts offsets.
    return std::make_unique<NoOpPostProcessor>();
  }
  if (type == "TemplateProcessing") {
    const json special_tokens = config.value("special_tokens", json::object());
    std::vector<std::vector<int32_t>> items;
    for (const json& item : config.value("single", json::array())) {
      if (item.contains("Sequence")) {
        items.emplace_back();
        continue;
      }
      if (!item.contains("SpecialToken")) {
        error = "TemplateProcessing item is neither Sequence nor SpecialToken";
        return nullptr;
      }
      std::string name = item["SpecialToken"].value("id", "");
      if (!special_tokens.contains(name) || !special_tokens[name].contains("ids")) {
        error = "TemplateProcessing special token '" + name + "' has no ids";
        return nullptr;
      }
      std::vector<int32_t> ids = special_tokens[name]["ids"].get<std::vector<int32_t>>();
      if (ids.empty()) continue;
      items.push_back(std::move(ids));
    }
    return std::make_unique<TemplatePostProcessor>(std::move(items));
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PostProcessor>> steps;
    for (const json& step : config.value("processors", json::array())) {
      auto processor = makePostProcessor(step, error);
      if (!processor) return nullptr;
      steps.push_back(std::move(processor));
    }
    return std::make_unique<SequencePostProcessor>(std::move(steps));
  }
  error = "unsupported post-processor type '" + type + "'";
  return nullptr;
}

std::unique_ptr<Decoder> makeDecoder(const json& config, std::string& error) {
  std::string type = typeOf(config);
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Replace") {
    auto regex = makePattern(config.value("pattern", json()), error);
    if (!regex) {
      error = "Replace decoder: " + error;
      return nullptr;
    }
    return std::make_unique<ReplaceDecoder>(std::move(regex), stringField(config, "content", ""));
  }
  if (type == "Strip") {
    std::string content = stringField(config, "content", " ");
    std::size_t pos = 0;
    char32_t cp = content.empty() ? U' ' : nextCodePoint(content, pos);
    return std::make_unique<StripDecoder>(cp, config.value("start", std::size_t{0}),
                                          config.value("stop", std::size_t{0}));
  }
  if (type == "Metaspace") {
    PrependScheme scheme = readPrependScheme(config, error);
    if (!error.empty()) return nullptr;
    return std::make_unique<MetaspaceDecoder>(stringField(config, "replacement", "\xE2\x96\x81"),
                                              scheme);
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Decoder>> steps;
    for (const json& step : config.value("decoders", json::array())) {
      auto decoder = makeDecoder(step, error);
      if (!decoder) return nullptr;
      steps.push_back(std::move(decoder));
    }
    return std::make_unique<SequenceDecoder>(std::move(steps));
  }
  error = "unsupported decoder type '" + type + "'";
  return nullptr;
}

}  // namespace hfchain::tokenizer_detail
