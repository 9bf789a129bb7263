// The event stream of a streamed (text/event-stream) response: reads the socket in chunks, feeds
// the decoder and hands out its events one at a time.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "hfchain/decoders.h"
#include "hfchain/response.h"
#include "transport/body_reader.h"
#include "transport/redactor.h"

namespace hfchain::transport {

class HttpEventStream final : public EventStream, private EventSink {
 public:
  // Bytes asked of the socket per read; a read returns what has arrived, often less.
  static constexpr size_t kReadChunkBytes = 16 * 1024;
  // After the final event the rest of the body (an OpenAI "data: [DONE]", the chunked
  // terminator) is read for at most this long, so that the connection can be reused.
  static constexpr int64_t kDrainWaitMs = 200;
  static constexpr size_t kDrainMaxBytes = 64 * 1024;

  HttpEventStream(std::unique_ptr<BodyReader> reader, std::unique_ptr<StreamDecoder> decoder,
                  Redactor redactor);
  ~HttpEventStream() override;

  bool next(Event& out) override;

 private:
  void onEvent(const Event& event) override;
  // Reads one chunk and decodes it; on a read failure queues the error as the final event.
  void fill();
  void finishBody();
  void pushError(Error error);

  std::unique_ptr<BodyReader> reader_;
  std::unique_ptr<StreamDecoder> decoder_;
  Redactor redactor_;
  std::deque<Event> pending_;
  std::vector<char> buffer_;
  bool final_queued_ = false;  // a kFinish or kError is in pending_ or was delivered
  bool final_delivered_ = false;
  bool finished_ok_ = false;  // the final event was a kFinish
  bool body_done_ = false;    // the reader was released
};

}  // namespace hfchain::transport
