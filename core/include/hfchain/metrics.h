// Process-wide metrics: counters, gauges and histograms keyed by name and label set,
// rendered in the Prometheus text exposition format.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace hfchain {

class Metrics {
 public:
  // The registry every link and the engine report to.
  static Metrics& global();

  // `labels` is empty or of the form name="value",name2="value2".
  void add(std::string_view name, std::string_view labels, double delta);
  void set(std::string_view name, std::string_view labels, double value);
  // Records one observation in a histogram with buckets suited to seconds.
  void observe(std::string_view name, std::string_view labels, double value);

  // Returns a counter's or gauge's value, or a histogram's count; 0 when never reported.
  double value(std::string_view name, std::string_view labels = "") const;
  std::string renderPrometheus() const;
  // Forgets every metric; for tests.
  void clearForTest();

 private:
  enum class Kind { kCounter, kGauge, kHistogram };
  struct Series {
    Kind kind = Kind::kCounter;
    double value = 0;  // counter or gauge value; histogram sum
    uint64_t count = 0;
    std::vector<uint64_t> buckets;
  };
  Series& series(std::string_view name, std::string_view labels, Kind kind);

  mutable std::mutex mutex_;
  std::map<std::string, std::map<std::string, Series>, std::less<>> metrics_;
};

}  // namespace hfchain
