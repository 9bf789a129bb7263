// Pull-based decoding of a streamed HTTP response.
#include "transport/http_event_stream.h"

#include <string_view>
#include <utility>

#include "hfchain/log.h"

namespace hfchain::transport {

HttpEventStream::HttpEventStream(std::unique_ptr<BodyReader> reader,
                                 std::unique_ptr<StreamDecoder> decoder, Redactor redactor)
    : reader_(std::move(reader)),
      decoder_(std::move(decoder)),
      redactor_(std::move(redactor)),
      buffer_(kReadChunkBytes) {}

HttpEventStream::~HttpEventStream() {
  if (finished_ok_) {
    finishBody();
    return;
  }
  if (!final_delivered_) {
    HFC_LOG_DEBUG(log::get("hfchain.transport"),
                  HFC_RID(reader_->info().request_id) + "stream of target \"" +
                      reader_->info().target + "\" destroyed before its end");
  }
  reader_->release();
}

bool HttpEventStream::next(Event& out) {
  while (pending_.empty()) {
    if (final_delivered_) {
      finishBody();
      return false;
    }
    fill();
  }
  out = std::move(pending_.front());
  pending_.pop_front();
  if (out.kind != EventKind::kToken) final_delivered_ = true;
  return true;
}

void HttpEventStream::onEvent(const Event& event) {
  if (final_queued_) return;
  Event copy = event;
  copy.served_by = reader_->info().target;
  if (copy.kind == EventKind::kError) {
    if (copy.error.target.empty()) copy.error.target = reader_->info().target;
    redactor_.apply(copy.error);
    HFC_LOG_WARNING(log::get("hfchain.transport"),
                    HFC_RID(reader_->info().request_id) + copy.error.describe());
  }
  if (copy.kind != EventKind::kToken) {
    final_queued_ = true;
    finished_ok_ = copy.kind == EventKind::kFinish;
  }
  pending_.push_back(std::move(copy));
}

void HttpEventStream::pushError(Error error) {
  if (final_queued_) return;
  Event event;
  event.kind = EventKind::kError;
  event.error = std::move(error);
  onEvent(event);
}

void HttpEventStream::fill() {
  auto count = reader_->read(buffer_.data(), buffer_.size());
  if (!count) {
    pushError(count.error());
    return;
  }
  if (*count == 0) {
    decoder_->finish(*this);
    if (!final_queued_) {
      pushError(makeError(
          ErrorClass::kStreamIncomplete,
          "the stream of target \"" + reader_->info().target + "\" ended without a final event"));
    }
    return;
  }
  decoder_->feed(std::string_view(buffer_.data(), *count), *this);
}

void HttpEventStream::finishBody() {
  if (body_done_) return;
  body_done_ = true;
  if (finished_ok_) reader_->drain(kDrainWaitMs, kDrainMaxBytes);
  reader_->release();
}

}  // namespace hfchain::transport
