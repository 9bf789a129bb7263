// Loading of tokenizer.json and the encode and decode pipelines of hfchain::Tokenizer.
#include "hfchain/tokenizer.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>
#include <utility>

#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/pipeline.h"
#include "tokenizer/unicode_text.h"

namespace hfchain {

using tokenizer_detail::AddedToken;
using tokenizer_detail::AddedTokenMatcher;
using tokenizer_detail::BpeModel;
using tokenizer_detail::BpeOptions;
using tokenizer_detail::Decoder;
using tokenizer_detail::Normalizer;
using tokenizer_detail::Piece;
using tokenizer_detail::PostProcessor;
using tokenizer_detail::PreTokenizer;
using tokenizer_detail::Segment;
using tokenizer_detail::StringHash;
using tokenizer_detail::TokenTable;

namespace {

using nlohmann::json;

// SAX handler that builds a JSON document of the whole file except model.vocab and
// model.merges, which go straight into a map and a list. The vocabulary of a large model has
// hundreds of thousands of entries, and a full document of them would be slow to build.
class TokenizerJsonReader : public nlohmann::json_sax<json> {
 public:
  json root;
  TokenTable vocab;
  std::vector<std::pair<std::string, std::string>> merges;
  bool has_vocab = false;
  bool has_merges = false;
  std::string error;

  bool null() override { return value(json(nullptr)); }
  bool boolean(bool v) override { return value(json(v)); }
  bool number_integer(number_integer_t v) override {
    if (mode_ == Mode::kVocab) return fail("vocabulary id must not be negative");
    return value(json(v));
  }
  bool number_unsigned(number_unsigned_t v) override {
    if (mode_ == Mode::kVocab) {
      if (v > static_cast<number_unsigned_t>(INT32_MAX)) return fail("vocabulary id too large");
      vocab.insertOrAssign(vocab_key_, static_cast<int32_t>(v));
      return true;
    }
    return value(json(v));
  }
  bool number_float(number_float_t v, const string_t&) override { return value(json(v)); }
  bool binary(binary_t&) override { return fail("unexpected binary value"); }

  bool string(string_t& v) override {
    if (mode_ == Mode::kMerges) {
      if (merge_depth_ == 0) {
        std::size_t space = v.find(' ');
        if (space == std::string::npos) return fail("merge '" + v + "' has no space");
        merges.emplace_back(v.substr(0, space), v.substr(space + 1));
        return true;
      }
      merge_parts_.push_back(std::move(v));
      return true;
    }
    return value(json(std::move(v)));
  }

  bool start_object(std::size_t) override {
    if (pending_ == Mode::kVocab) {
      pending_ = Mode::kDocument;
      mode_ = Mode::kVocab;
      has_vocab = true;
      return true;
    }
    if (pending_ == Mode::kMerges) return fail("model.merges must be an array");
    if (mode_ != Mode::kDocument) return fail("unexpected object in model.vocab or model.merges");
    return open(json::object());
  }

  bool key(string_t& k) override {
    if (mode_ == Mode::kVocab) {
      vocab_key_ = std::move(k);
      return true;
    }
    if (stack_.size() == 1) top_level_key_ = k;
    if (stack_.size() == 2 && top_level_key_ == "model" && (k == "vocab" || k == "merges")) {
      pending_ = k == "vocab" ? Mode::kVocab : Mode::kMerges;
      return true;
    }
    object_element_ = &(*stack_.back())[k];
    return true;
  }

  bool end_object() override {
    if (mode_ == Mode::kVocab) {
      mode_ = Mode::kDocument;
      return true;
    }
    stack_.pop_back();
    return true;
  }

  bool start_array(std::size_t) override {
    if (pending_ == Mode::kMerges) {
      pending_ = Mode::kDocument;
      mode_ = Mode::kMerges;
      has_merges = true;
      merge_depth_ = 0;
      return true;
    }
    if (pending_ == Mode::kVocab) return fail("model.vocab must be an object");
    if (mode_ == Mode::kMerges) {
      if (merge_depth_ != 0) return fail("merges nest too deep");
      merge_depth_ = 1;
      merge_parts_.clear();
      return true;
    }
    if (mode_ == Mode::kVocab) return fail("unexpected array in model.vocab");
    return open(json::array());
  }

  bool end_array() override {
    if (mode_ == Mode::kMerges) {
      if (merge_depth_ == 0) {
        mode_ = Mode::kDocument;
        return true;
      }
      merge_depth_ = 0;
      if (merge_parts_.size() != 2) return fail("a merge must have two parts");
      merges.emplace_back(std::move(merge_parts_[0]), std::move(merge_parts_[1]));
      return true;
    }
    stack_.pop_back();
    return true;
  }

  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& e) override {
    if (error.empty()) error = "invalid JSON at byte " + std::to_string(position) + ": " + e.what();
    return false;
  }

 private:
  enum class Mode { kDocument, kVocab, kMerges };

  bool fail(std::string message) {
    if (error.empty()) error = std::move(message);
    return false;
  }

  json* place(json v) {
    if (pending_ != Mode::kDocument) {
      fail(pending_ == Mode::kVocab ? "model.vocab must be an object"
                                    : "model.merges must be an array");
      return nullptr;
    }
    if (stack_.empty()) {
      root = std::move(v);
      return &root;
    }
    if (stack_.back()->is_array()) {
      stack_.back()->push_back(std::move(v));
      return &stack_.back()->back();
    }
    *object_element_ = std::move(v);
    return object_element_;
  }

  bool value(json v) {
    if (mode_ != Mode::kDocument) return fail("unexpected value in model.vocab or model.merges");
    return place(std::move(v)) != nullptr;
  }

  bool open(json container) {
    json* placed = place(std::move(container));
    if (placed == nullptr) return false;
    stack_.push_back(placed);
    return true;
  }

  Mode mode_ = Mode::kDocument;
  Mode pending_ = Mode::kDocument;
  std::vector<json*> stack_;
  json* object_element_ = nullptr;
  std::string top_level_key_;
  std::string vocab_key_;
  int merge_depth_ = 0;
  std::vector<std::string> merge_parts_;
};

TokenizerLoadResult loadFailure(std::string_view source, const std::string& reason) {
  TokenizerLoadResult result;
  result.error = makeError(ErrorClass::kConfigRejected,
                           "cannot load tokenizer " + std::string(source) + ": " + reason);
  return result;
}

}  // namespace

struct Tokenizer::Impl {
  std::unique_ptr<BpeModel> model;
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  std::unique_ptr<PostProcessor> post_processor;
  std::unique_ptr<Decoder> decoder;
  AddedTokenMatcher raw_matcher;         // added tokens with normalized = false
  AddedTokenMatcher normalized_matcher;  // added tokens with normalized = true
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> added_token_ids;
  std::vector<std::string> id_to_token;  // model tokens overlaid with added tokens
  std::vector<char> is_special;          // by id
  std::size_t vocab_size = 0;

  void encodeText(std::string_view text, bool at_input_start, std::vector<int32_t>& ids) const;
  void modelTokenize(std::string text, bool at_input_start, std::vector<int32_t>& ids) const;
};

void Tokenizer::Impl::modelTokenize(std::string text, bool at_input_start,
                                    std::vector<int32_t>& ids) const {
  thread_local std::vector<Piece> pieces;
  pieces.clear();
  pieces.push_back(Piece{std::move(text), at_input_start});
  if (pre_tokenizer) pre_tokenizer->preTokenize(pieces);
  for (const Piece& piece : pieces) model->tokenize(piece.text, ids);
}

void Tokenizer::Impl::encodeText(std::string_view text, bool at_input_start,
                                 std::vector<int32_t>& ids) const {
  std::string normalized(text);
  if (normalizer) normalizer->normalize(normalized);
  if (normalized_matcher.empty()) {
    modelTokenize(std::move(normalized), at_input_start, ids);
    return;
  }
  std::vector<Segment> segments;
  normalized_matcher.split(normalized, segments);
  for (const Segment& segment : segments) {
    if (segment.token_id >= 0) {
      ids.push_back(segment.token_id);
    } else {
      modelTokenize(normalized.substr(segment.start, segment.end - segment.start),
                    at_input_start && segment.start == 0, ids);
    }
  }
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

TokenizerLoadResult Tokenizer::load(const std::filesystem::path& path) {
  std::error_code ignored;
  if (std::filesystem::is_directory(path, ignored)) {
    return loadFailure(path.string(), "is a directory; name the tokenizer.json file in it");
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) return loadFailure(path.string(), "file not found or not readable");
  std::ostringstream contents;
  contents << file.rdbuf();
  if (!file.good() && !file.eof()) return loadFailure(path.string(), "read failed");
  return fromJson(contents.str(), path.string());
}

TokenizerLoadResult Tokenizer::fromJson(std::string_view json_text, std::string_view source_name) {
  TokenizerJsonReader reader;
  bool parsed = false;
  try {
    parsed = json::sax_parse(json_text, &reader);
  } catch (const std::exception& e) {
    return loadFailure(source_name, std::string("invalid JSON: ") + e.what());
  }
  if (!parsed) {
    return loadFailure(source_name, reader.error.empty() ? "invalid JSON" : reader.error);
  }
  const json& root = reader.root;
  if (!root.is_object() || !root.contains("model") || !root["model"].is_object()) {
    return loadFailure(source_name, "no model object");
  }
  const json& model = root["model"];
  std::string model_type = model.value("type", "BPE");
  if (model_type != "BPE") {
    return loadFailure(source_name,
                       "unsupported model type '" + model_type + "' (only BPE is supported)");
  }
  if (!reader.has_vocab) return loadFailure(source_name, "model.vocab is missing");
  if (model.contains("dropout") && !model["dropout"].is_null()) {
    return loadFailure(source_name, "BPE dropout is not supported (it makes encoding random)");
  }

  BpeOptions options;
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    options.unk_token = model["unk_token"].get<std::string>();
  }
  auto string_option = [&](const char* name) {
    return model.contains(name) && model[name].is_string() ? model[name].get<std::string>()
                                                           : std::string();
  };
  options.continuing_subword_prefix = string_option("continuing_subword_prefix");
  options.end_of_word_suffix = string_option("end_of_word_suffix");
  auto bool_option = [&](const char* name) {
    return model.contains(name) && model[name].is_boolean() && model[name].get<bool>();
  };
  options.fuse_unk = bool_option("fuse_unk");
  options.byte_fallback = bool_option("byte_fallback");
  options.ignore_merges = bool_option("ignore_merges");

  auto impl = std::make_unique<Impl>();
  impl->model = std::make_unique<BpeModel>(std::move(reader.vocab), std::move(options));
  impl->model->reserveMerges(reader.merges.size());
  for (const auto& [left, right] : reader.merges) {
    if (auto merge_error = impl->model->addMerge(left, right)) {
      return loadFailure(source_name, *merge_error);
    }
  }
  reader.merges.clear();
  if (auto finish_error = impl->model->finish()) return loadFailure(source_name, *finish_error);

  std::string error;
  auto component = [&](const char* name, auto make, auto& target) -> bool {
    if (!root.contains(name) || root[name].is_null()) return true;
    target = make(root[name], error);
    if (!target) error = std::string(name) + ": " + error;
    return target != nullptr;
  };
  if (!component("normalizer", tokenizer_detail::makeNormalizer, impl->normalizer) ||
      !component("pre_tokenizer", tokenizer_detail::makePreTokenizer, impl->pre_tokenizer) ||
      !component("post_processor", tokenizer_detail::makePostProcessor, impl->post_processor) ||
      !component("decoder", tokenizer_detail::makeDecoder, impl->decoder)) {
    return loadFailure(source_name, error);
  }
  if (root.contains("truncation") && !root["truncation"].is_null()) {
    return loadFailure(source_name, "truncation settings are not supported");
  }
  if (root.contains("padding") && !root["padding"].is_null()) {
    return loadFailure(source_name, "padding settings are not supported");
  }

  impl->id_to_token = impl->model->idToToken();
  impl->vocab_size = impl->model->vocabularySize();
  int32_t max_added_id = -1;
  for (const json& entry : root.value("added_tokens", json::array())) {
    AddedToken token;
    try {
      token.content = entry.at("content").get<std::string>();
      token.special = entry.value("special", false);
      token.single_word = entry.value("single_word", false);
      token.lstrip = entry.value("lstrip", false);
      token.rstrip = entry.value("rstrip", false);
      token.normalized = entry.value("normalized", !token.special);
    } catch (const json::exception& e) {
      return loadFailure(source_name, std::string("invalid added token: ") + e.what());
    }
    // The Rust library ignores the "id" field and numbers added tokens itself: a token already
    // in the vocabulary keeps its id, a new one gets the next id after the model vocabulary
    // and the added tokens so far. For consistent files both give the same ids.
    auto added_it = impl->added_token_ids.find(token.content);
    std::optional<int32_t> existing = added_it != impl->added_token_ids.end()
                                          ? std::optional<int32_t>(added_it->second)
                                          : impl->model->tokenToId(token.content);
    if (existing) {
      token.id = *existing;
    } else {
      auto model_size = static_cast<int32_t>(impl->model->vocabularySize());
      token.id = max_added_id >= model_size || model_size == 0 ? max_added_id + 1 : model_size;
      ++impl->vocab_size;
    }
    max_added_id = std::max(max_added_id, token.id);
    impl->added_token_ids.insert_or_assign(token.content, token.id);
    auto index = static_cast<std::size_t>(token.id);
    if (index >= impl->id_to_token.size()) impl->id_to_token.resize(index + 1);
    impl->id_to_token[index] = token.content;
    if (impl->is_special.size() <= index) impl->is_special.resize(index + 1, 0);
    impl->is_special[index] = token.special ? 1 : 0;
    if (token.normalized) {
      impl->normalized_matcher.add(token);
    } else {
      impl->raw_matcher.add(token);
    }
  }
  impl->is_special.resize(impl->id_to_token.size(), 0);

  TokenizerLoadResult result;
  result.tokenizer = TokenizerConstSharedPtr(new Tokenizer(std::move(impl)));
  return result;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::string replaced;
  if (tokenizer_detail::validUtf8Prefix(text) != text.size()) {
    replaced = tokenizer_detail::replaceInvalidUtf8(text);
    text = replaced;
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (impl_->raw_matcher.empty()) {
    if (!text.empty()) impl_->encodeText(text, true, ids);
  } else {
    thread_local std::vector<Segment> segments;
    segments.clear();
    impl_->raw_matcher.split(text, segments);
    for (const Segment& segment : segments) {
      if (segment.token_id >= 0) {
        ids.push_back(segment.token_id);
      } else {
        impl_->encodeText(text.substr(segment.start, segment.end - segment.start),
                          segment.start == 0, ids);
      }
    }
  }
  if (impl_->post_processor) impl_->post_processor->process(ids, add_special_tokens);
  return ids;
}

std::size_t Tokenizer::count(std::string_view text, bool add_special_tokens) const {
  return encode(text, add_special_tokens).size();
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    if (id < 0 || static_cast<std::size_t>(id) >= impl_->id_to_token.size()) continue;
    const std::string& token = impl_->id_to_token[static_cast<std::size_t>(id)];
    if (token.empty()) continue;
    if (skip_special_tokens && impl_->is_special[static_cast<std::size_t>(id)]) continue;
    tokens.push_back(token);
  }
  std::string out;
  if (!impl_->decoder) {
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) out.push_back(' ');
      out += tokens[i];
    }
    return out;
  }
  impl_->decoder->decodeChain(tokens);
  for (const std::string& token : tokens) out += token;
  return out;
}

std::optional<int32_t> Tokenizer::tokenToId(std::string_view token) const {
  auto it = impl_->added_token_ids.find(token);
  if (it != impl_->added_token_ids.end()) return it->second;
  return impl_->model->tokenToId(token);
}

std::optional<std::string> Tokenizer::idToToken(int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= impl_->id_to_token.size()) return std::nullopt;
  const std::string& token = impl_->id_to_token[static_cast<std::size_t>(id)];
  if (token.empty()) return std::nullopt;
  return token;
}

std::size_t Tokenizer::vocabSize() const { return impl_->vocab_size; }

bool Tokenizer::isValidUtf8(std::string_view text) {
  return tokenizer_detail::validUtf8Prefix(text) == text.size();
}

}  // namespace hfchain
