// The metrics registry and its Prometheus rendering.
#include "hfchain/metrics.h"

#include <array>
#include <sstream>

namespace hfchain {
namespace {

constexpr std::array<double, 13> kBucketBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                  1,     2.5,  5,     10,   30,  60};

std::string withLabel(const std::string& labels, const std::string& extra) {
  if (labels.empty()) return "{" + extra + "}";
  return "{" + labels + "," + extra + "}";
}

std::string formatNumber(double value) {
  std::ostringstream out;
  out.precision(17);
  out << value;
  return out.str();
}

}  // namespace

Metrics& Metrics::global() {
  static Metrics metrics;
  return metrics;
}

Metrics::Series& Metrics::series(std::string_view name, std::string_view labels, Kind kind) {
  auto family = metrics_.find(name);
  if (family == metrics_.end())
    family = metrics_.emplace(std::string(name), std::map<std::string, Series>()).first;
  auto& entry = family->second[std::string(labels)];
  if (entry.count == 0 && entry.value == 0) entry.kind = kind;
  if (kind == Kind::kHistogram && entry.buckets.empty())
    entry.buckets.assign(kBucketBounds.size(), 0);
  return entry;
}

void Metrics::add(std::string_view name, std::string_view labels, double delta) {
  if (delta < 0) return;  // counters only grow
  std::lock_guard lock(mutex_);
  series(name, labels, Kind::kCounter).value += delta;
}

void Metrics::set(std::string_view name, std::string_view labels, double value) {
  std::lock_guard lock(mutex_);
  Series& entry = series(name, labels, Kind::kGauge);
  entry.kind = Kind::kGauge;
  entry.value = value;
}

void Metrics::observe(std::string_view name, std::string_view labels, double value) {
  std::lock_guard lock(mutex_);
  Series& entry = series(name, labels, Kind::kHistogram);
  entry.value += value;
  entry.count += 1;
  for (size_t i = 0; i < kBucketBounds.size(); ++i) {
    if (value <= kBucketBounds[i]) entry.buckets[i] += 1;
  }
}

double Metrics::value(std::string_view name, std::string_view labels) const {
  std::lock_guard lock(mutex_);
  auto family = metrics_.find(name);
  if (family == metrics_.end()) return 0;
  auto entry = family->second.find(std::string(labels));
  if (entry == family->second.end()) return 0;
  return entry->second.kind == Kind::kHistogram ? static_cast<double>(entry->second.count)
                                                : entry->second.value;
}

std::string Metrics::renderPrometheus() const {
  std::lock_guard lock(mutex_);
  std::ostringstream out;
  for (const auto& [name, family] : metrics_) {
    if (family.empty()) continue;
    Kind kind = family.begin()->second.kind;
    const char* type = kind == Kind::kCounter ? "counter"
                       : kind == Kind::kGauge ? "gauge"
                                              : "histogram";
    out << "# TYPE " << name << " " << type << "\n";
    for (const auto& [labels, entry] : family) {
      std::string label_text = labels.empty() ? "" : "{" + labels + "}";
      if (entry.kind != Kind::kHistogram) {
        out << name << label_text << " " << formatNumber(entry.value) << "\n";
        continue;
      }
      for (size_t i = 0; i < kBucketBounds.size(); ++i) {
        out << name << "_bucket"
            << withLabel(labels, "le=\"" + formatNumber(kBucketBounds[i]) + "\"") << " "
            << entry.buckets[i] << "\n";
      }
      out << name << "_bucket" << withLabel(labels, "le=\"+Inf\"") << " " << entry.count << "\n";
      out << name << "_sum" << label_text << " " << formatNumber(entry.value) << "\n";
      out << name << "_count" << label_text << " " << entry.count << "\n";
    }
  }
  return out.str();
}

void Metrics::clearForTest() {
  std::lock_guard lock(mutex_);
  metrics_.clear();
}

}  // namespace hfchain
