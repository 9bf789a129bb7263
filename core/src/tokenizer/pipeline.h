// The configurable stages of a tokenizer.json around the model: normalizers, pre-tokenizers,
// post-processors and decoders, each built from its JSON object.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace hfchain::tokenizer_detail {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // Rewrites valid UTF-8 text in place.
  virtual void normalize(std::string& text) const = 0;
};

// A pre-tokenizer piece. The offset flag is needed by Metaspace with prepend_scheme "first".
struct Piece {
  std::string text;
  bool at_input_start = false;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Splits or rewrites the pieces; empty pieces may be left and are skipped by the caller.
  virtual void preTokenize(std::vector<Piece>& pieces) const = 0;
};

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // Adds special tokens to the ids of a single sequence when add_special_tokens is set.
  virtual void process(std::vector<int32_t>& ids, bool add_special_tokens) const = 0;
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  // Rewrites the token strings; the caller concatenates the result.
  virtual void decodeChain(std::vector<std::string>& tokens) const = 0;
};

// Each builder returns nullptr and sets error (naming the component) for an unsupported or
// invalid object. A JSON null is handled by the caller.
std::unique_ptr<Normalizer> makeNormalizer(const nlohmann::json& config, std::string& error);
std::unique_ptr<PreTokenizer> makePreTokenizer(const nlohmann::json& config, std::string& error);
std::unique_ptr<PostProcessor> makePostProcessor(const nlohmann::json& config, std::string& error);
std::unique_ptr<Decoder> makeDecoder(const nlohmann::json& config, std::string& error);

}  // namespace hfchain::tokenizer_detail
