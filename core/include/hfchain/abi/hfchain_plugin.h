/* The hfchain plugin ABI: the C boundary between the engine and link plugins.
 *
 * A plugin is a shared library that exports `hfchain_plugin_init`. The host loads it with
 * dlopen, calls that function with the ABI version it implements, and checks the returned
 * descriptor's abi_version and struct_size before it calls anything else in the plugin.
 *
 * Naming: hfc_* types, HFC_* constants, hooks that the plugin implements are fields of
 * hfc_link_descriptor, callbacks that the host implements are fields of hfc_host_api.
 *
 * Ownership: every object behind an opaque pointer belongs to the host. A plugin frees only
 * what a host callback says it owns: an hfc_response returned by next_call or response_new_*,
 * and an hfc_event returned by event_new. Strings passed in hfc_str are borrowed; the ones
 * the host returns stay valid until the object they came from is changed or freed.
 *
 * Versioning: HFC_ABI_VERSION changes whenever a struct below changes layout or a callback
 * changes meaning. The host accepts a plugin only when both abi_version and every
 * struct_size equal its own; there is no partial compatibility, so a plugin built against
 * another version is rejected with both versions named.
 *
 * Exceptions and longjmp must never cross this boundary. */
#ifndef HFCHAIN_ABI_HFCHAIN_PLUGIN_H_
#define HFCHAIN_ABI_HFCHAIN_PLUGIN_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HFC_ABI_VERSION 2u

/* The symbol every plugin exports. */
#define HFC_PLUGIN_INIT_SYMBOL "hfchain_plugin_init"

/* A borrowed byte string; not NUL-terminated. */
typedef struct hfc_str {
  const char* data;
  size_t size;
} hfc_str;

typedef struct hfc_request hfc_request;   /* host-owned */
typedef struct hfc_response hfc_response; /* owned by its holder, freed through the host */
typedef struct hfc_event hfc_event;       /* host-owned or from event_new */
typedef struct hfc_next hfc_next;         /* the rest of the chain, valid during round_trip */
typedef struct hfc_chain hfc_chain;       /* links a plugin had the host build for it */

/* Error classes; the values equal hfchain::ErrorClass. */
typedef enum hfc_error_class {
  HFC_ERROR_NONE = 0,
  HFC_ERROR_INVALID_REQUEST = 1,
  HFC_ERROR_UPSTREAM_VALIDATION = 2,
  HFC_ERROR_UPSTREAM_AUTH = 3,
  HFC_ERROR_UPSTREAM_NOT_FOUND = 4,
  HFC_ERROR_RATE_LIMITED = 5,
  HFC_ERROR_MODEL_LOADING = 6,
  HFC_ERROR_UPSTREAM_5XX = 7,
  HFC_ERROR_UPSTREAM_GENERATION = 8,
  HFC_ERROR_TIMEOUT = 9,
  HFC_ERROR_CONNECT_FAILED = 10,
  HFC_ERROR_CONNECTION_RESET = 11,
  HFC_ERROR_STREAM_INCOMPLETE = 12,
  HFC_ERROR_STREAM_PARSE = 13,
  HFC_ERROR_EVENT_TOO_LARGE = 14,
  HFC_ERROR_CIRCUIT_OPEN = 15,
  HFC_ERROR_BUDGET_EXCEEDED = 16,
  HFC_ERROR_CONTEXT_OVERFLOW = 17,
  HFC_ERROR_CANCELLED = 18,
  HFC_ERROR_CONFIG_REJECTED = 19,
  HFC_ERROR_PLUGIN_REJECTED = 20,
  HFC_ERROR_INTERNAL = 21
} hfc_error_class;

typedef enum hfc_event_kind {
  HFC_EVENT_TOKEN = 1,
  HFC_EVENT_FINISH = 2,
  HFC_EVENT_ERROR = 3
} hfc_event_kind;

typedef enum hfc_log_level {
  HFC_LOG_TRACE = 0,
  HFC_LOG_DEBUG = 1,
  HFC_LOG_INFO = 2,
  HFC_LOG_WARNING = 3,
  HFC_LOG_ERROR = 4
} hfc_log_level;

/* String fields of a request. */
typedef enum hfc_request_field {
  HFC_REQUEST_ID = 1,     /* read-only */
  HFC_REQUEST_TARGET = 2, /* target name; empty means the default target */
  HFC_REQUEST_MODEL = 3,
  HFC_REQUEST_INPUTS = 4 /* raw prompt of a non-chat request */
} hfc_request_field;

/* String fields of an event. */
typedef enum hfc_event_field {
  HFC_EVENT_TEXT = 1,
  HFC_EVENT_FINISH_REASON = 2,
  HFC_EVENT_GENERATED_TEXT = 3,
  HFC_EVENT_ERROR_MESSAGE = 4,
  HFC_EVENT_SERVED_BY = 5
} hfc_event_field;

/* Integer fields of an event. */
typedef enum hfc_event_int {
  HFC_EVENT_KIND = 1,
  HFC_EVENT_TOKEN_ID = 2,
  HFC_EVENT_SPECIAL = 3,
  HFC_EVENT_PROMPT_TOKENS = 4,
  HFC_EVENT_COMPLETION_TOKENS = 5,
  HFC_EVENT_ERROR_CLASS = 6,
  HFC_EVENT_ERROR_HTTP_STATUS = 7
} hfc_event_int;

/* An error as a plain struct, for building error responses and reading them back.
 * The message is borrowed. */
typedef struct hfc_error {
  uint32_t error_class; /* hfc_error_class */
  int32_t http_status;  /* 0 when there was no HTTP answer */
  hfc_str message;
  int64_t retry_after_ms;  /* -1 when absent */
  double estimated_time_s; /* -1 when absent */
} hfc_error;

/* Facts about a target. Strings are borrowed from the running config. */
typedef struct hfc_target_info {
  hfc_str name;
  hfc_str protocol; /* "tgi", "openai" or "hf-serverless" */
  hfc_str base_url;
  hfc_str model;
  int64_t context_window; /* tokens; 0 when unknown */
} hfc_target_info;

/* How a token count was made. */
typedef enum hfc_count_method {
  HFC_COUNT_TOKENIZER =
      1,                /* the target's tokenizer.json; a chat is rendered with its chat template */
  HFC_COUNT_REMOTE = 2, /* the target's TGI /tokenize endpoint */
  HFC_COUNT_ESTIMATE = 3 /* characters per token for each script: an estimate */
} hfc_count_method;

/* A token count. `note` gives the reason the count is an estimate when the target's configured
 * counter could not be used, such as a chat template that failed to render or a /tokenize call
 * that failed. It is empty otherwise, and stays valid until the next count call on the same
 * thread. */
typedef struct hfc_token_count {
  int64_t tokens;
  uint32_t method; /* hfc_count_method */
  hfc_str note;
} hfc_token_count;

/* Hooks of a stream that a plugin makes itself, either to wrap another stream or to
 * answer on its own. `next` writes one event into `out` and returns 1, or returns 0 at the
 * end; it must end with a finish or an error event. `destroy` releases the state, whether
 * or not the stream was read to its end. */
typedef struct hfc_stream_hooks {
  uint32_t struct_size;
  int (*next)(void* state, hfc_event* out);
  void (*destroy)(void* state);
} hfc_stream_hooks;

/* Callbacks the host provides. A plugin receives this table in `create` and may keep the
 * pointer for the lifetime of its instances. All callbacks are thread-safe for distinct
 * objects; one request, response or event is used by one thread at a time. */
typedef struct hfc_host_api {
  uint32_t abi_version;
  uint32_t struct_size;

  /* Logging. `request` may be null; when set, the host adds the request id. */
  void (*log)(const hfc_request* request, hfc_log_level level, hfc_str logger, hfc_str message);
  int (*log_enabled)(hfc_log_level level);

  /* Request fields. */
  hfc_str (*request_get)(const hfc_request* request, hfc_request_field field);
  int (*request_set)(hfc_request* request, hfc_request_field field, hfc_str value);
  int (*request_get_stream)(const hfc_request* request);
  /* A parameter as JSON text; returns 0 and an empty string when absent. The text stays
   * valid until the next request_param_get call on the same thread. */
  int (*request_param_get)(const hfc_request* request, hfc_str name, hfc_str* json_out);
  /* Sets a parameter from JSON text, or removes it when json.data is null. Returns 0 and
   * leaves the request unchanged when the text is not valid JSON. */
  int (*request_param_set)(hfc_request* request, hfc_str name, hfc_str json);
  /* Outgoing headers. get returns 0 when absent. set with value.data null removes. */
  int (*request_header_get)(const hfc_request* request, hfc_str name, hfc_str* value_out);
  void (*request_header_set)(hfc_request* request, hfc_str name, hfc_str value);
  /* Caller metadata ("key", "tenant", ...), same rules as headers. */
  int (*request_meta_get)(const hfc_request* request, hfc_str name, hfc_str* value_out);
  void (*request_meta_set)(hfc_request* request, hfc_str name, hfc_str value);
  /* Chat messages. */
  size_t (*request_message_count)(const hfc_request* request);
  int (*request_message_get)(const hfc_request* request, size_t index, hfc_str* role_out,
                             hfc_str* content_out);
  /* Inserts at index (index == count appends) or, with role.data null, erases index. */
  int (*request_message_insert)(hfc_request* request, size_t index, hfc_str role, hfc_str content);
  int (*request_message_erase)(hfc_request* request, size_t index);
  int (*request_message_set)(hfc_request* request, size_t index, hfc_str role, hfc_str content);
  /* Milliseconds left before the request's deadline; -1 when it has none. */
  int64_t (*request_deadline_remaining_ms)(const hfc_request* request);
  void (*request_set_deadline_ms)(hfc_request* request, int64_t from_now_ms);
  /* A deep copy, owned by the caller, freed with request_free. The copy has its own
   * cancellation flag, so cancelling one hedged copy leaves the others running. */
  hfc_request* (*request_clone)(const hfc_request* request);
  void (*request_free)(hfc_request* request);
  /* Cancellation: a cancelled request's transport gives up within about 100 ms with a
   * cancelled error, and sleep_ms returns early. */
  void (*request_cancel)(hfc_request* request);
  int (*request_is_cancelled)(const hfc_request* request);

  /* The rest of the chain. May be called any number of times during round_trip, from any
   * thread, and never returns null; failures come back as error responses. The caller owns
   * the response. */
  hfc_response* (*next_call)(hfc_next* next, hfc_request* request);
  /* A copy of `next` that stays valid after round_trip returns, until next_free. It serves
   * calls that may outlive the link's round_trip, such as a hedged request still in flight. */
  hfc_next* (*next_clone)(const hfc_next* next);
  void (*next_free)(hfc_next* next);
  /* Facts about a target of the running config; returns 0 when there is no such target.
   * An empty name means the config's default target. */
  int (*target_info)(const hfc_next* next, hfc_str name, hfc_target_info* out);

  /* Responses. */
  int (*response_status)(const hfc_response* response);
  /* Returns 1 and fills `out` when the response failed before its first event. */
  int (*response_error)(const hfc_response* response, hfc_error* out);
  int (*response_header_get)(const hfc_response* response, hfc_str name, hfc_str* value_out);
  void (*response_header_set)(hfc_response* response, hfc_str name, hfc_str value);
  /* Reads the next event into `out`; returns 1, or 0 at the end of the stream. */
  int (*response_next_event)(hfc_response* response, hfc_event* out);
  /* A new response that answers `text` as one token and a finish event. */
  hfc_response* (*response_new_text)(int status, hfc_str text, hfc_str finish_reason);
  /* A new failed response carrying `error`. */
  hfc_response* (*response_new_error)(const hfc_error* error);
  /* A new response whose events come from `hooks`. When `base` is not null, its status and
   * headers are taken over and `base` is freed: the usual way to wrap a stream is to keep
   * the inner response's stream in `state` through response_take_stream first. */
  hfc_response* (*response_new_stream)(hfc_response* base, const hfc_stream_hooks* hooks,
                                       void* state);
  /* Moves the stream out of `response` into a new response that owns only the stream, so
   * that a wrapper can read it while `response` is handed to response_new_stream. */
  hfc_response* (*response_take_stream)(hfc_response* response);
  void (*response_free)(hfc_response* response);

  /* Events. */
  hfc_event* (*event_new)(void);
  void (*event_free)(hfc_event* event);
  void (*event_copy)(hfc_event* to, const hfc_event* from);
  hfc_str (*event_get)(const hfc_event* event, hfc_event_field field);
  void (*event_set)(hfc_event* event, hfc_event_field field, hfc_str value);
  int64_t (*event_get_int)(const hfc_event* event, hfc_event_int field);
  void (*event_set_int)(hfc_event* event, hfc_event_int field, int64_t value);
  /* Logprob: returns 0 when absent. */
  int (*event_get_logprob)(const hfc_event* event, double* out);
  /* Makes `event` an error event carrying `error`. */
  void (*event_set_error)(hfc_event* event, const hfc_error* error);

  /* Time. Links read time and wait through the host so that tests can run them on a
   * virtual clock. now_ms is monotonic milliseconds. sleep_ms waits up to `ms`, returns 1
   * after the full wait, or 0 early when `request` (may be null) is cancelled or its
   * deadline passes. */
  int64_t (*now_ms)(void);
  int (*sleep_ms)(const hfc_request* request, int64_t ms);

  /* Metrics, exported by the gateway in the Prometheus text format. `name` is a metric
   * name such as hfchain_retries_total; `labels` is empty or a list such as
   * target="a",class="timeout". Counters only grow; gauges are set; observations feed a
   * histogram. */
  void (*metric_add)(hfc_str name, hfc_str labels, double delta);
  void (*metric_set)(hfc_str name, hfc_str labels, double value);
  void (*metric_observe)(hfc_str name, hfc_str labels, double value);

  /* Nested chains, for links that run their own links on some paths (a fallback tier with
   * its own budget check, say). chain_build takes a JSON array in the form of the config's
   * chain ([{"link": "auth", "settings": {...}}, ...]) and may only be called from a
   * create hook; on failure it returns null and writes the reason. chain_call runs
   * `request` through the nested links and then through `next`. The plugin owns the chain
   * and frees it with chain_free, at the latest in its destroy hook. */
  hfc_chain* (*chain_build)(hfc_str links_json, char* error_out, size_t error_capacity);
  hfc_response* (*chain_call)(hfc_chain* chain, hfc_next* next, hfc_request* request);
  void (*chain_free)(hfc_chain* chain);

  /* Token counting with the counter configured for a target (docs/config.md, `tokenizer`
   * and `token_counter`). count_request_tokens counts the input of `request` as the model
   * of its target counts it: a chat is rendered with the chat template, generation prompt
   * included, and raw inputs get the tokenizer's special tokens. count_text_tokens counts
   * plain text, such as generated output, with no special tokens added. An empty target
   * name means the config's default target. Both return 0 when there is no such target;
   * a target without a tokenizer gets an estimate. */
  int (*count_request_tokens)(const hfc_next* next, const hfc_request* request,
                              hfc_token_count* out);
  int (*count_text_tokens)(const hfc_next* next, hfc_str target, hfc_str text,
                           hfc_token_count* out);
} hfc_host_api;

/* Result of a plugin's create hook. On failure the plugin writes a NUL-terminated reason
 * of at most error_capacity bytes into error_out. */
typedef enum hfc_create_result {
  HFC_CREATE_OK = 0,
  HFC_CREATE_INVALID_SETTINGS = 1,
  HFC_CREATE_FAILED = 2
} hfc_create_result;

/* One link type a plugin provides. */
typedef struct hfc_link_descriptor {
  uint32_t struct_size;
  const char* name;        /* the name used in YAML, e.g. "auth" */
  const char* description; /* one line for `hfchain plugins` */
  /* Creates an instance from the link's settings, given as a JSON object. Called once per
   * chain build, so also when a config is checked or reloaded. */
  hfc_create_result (*create)(const hfc_host_api* host, hfc_str settings_json, void** instance_out,
                              char* error_out, size_t error_capacity);
  void (*destroy)(void* instance);
  /* Handles one request. Called from many threads at once on the same instance. Returns a
   * response the caller then owns; never null. */
  hfc_response* (*round_trip)(void* instance, hfc_request* request, hfc_next* next);
} hfc_link_descriptor;

typedef struct hfc_plugin_descriptor {
  uint32_t abi_version; /* HFC_ABI_VERSION the plugin was built against */
  uint32_t struct_size; /* sizeof(hfc_plugin_descriptor) as the plugin was built */
  const char* name;
  const char* version;
  uint32_t link_count;
  const hfc_link_descriptor* links;
} hfc_plugin_descriptor;

/* The entry point. It returns the plugin's descriptor whatever `host_abi_version` is, so
 * that the host can name both versions when they differ. A plugin that supports several
 * versions may use the argument to pick one. Returning null declines to load. It must not
 * call back into the host. */
typedef const hfc_plugin_descriptor* (*hfc_plugin_init_fn)(uint32_t host_abi_version);

#ifdef __cplusplus
}
#endif

#endif /* HFCHAIN_ABI_HFCHAIN_PLUGIN_H_ */
