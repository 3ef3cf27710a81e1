package envoysim

import "sync/atomic"

// Stats is a snapshot of the emulator's counters, named after Envoy's
// ext_proc filter statistics (docs: "External Processing" filter, Statistics)
// plus a few emulator counters (LocalReplies, UpstreamRequests, ...). The
// flat ext_proc fields are the downstream filter's; UpstreamFilter holds the
// upstream filter's (Config.UpstreamFilter, its own stat_prefix in Envoy).
type Stats struct {
	StreamsStarted                 uint64 // streams_started
	StreamMsgsSent                 uint64 // stream_msgs_sent
	StreamMsgsReceived             uint64 // stream_msgs_received
	SpuriousMsgsReceived           uint64 // spurious_msgs_received
	StreamsClosed                  uint64 // streams_closed: server ended the stream with OK
	StreamsFailed                  uint64 // streams_failed: gRPC error on the stream
	FailureModeAllowed             uint64 // failure_mode_allowed
	MessageTimeouts                uint64 // message_timeouts
	RejectedHeaderMutations        uint64 // rejected_header_mutations
	ClearRouteCacheIgnored         uint64 // clear_route_cache_ignored
	ClearRouteCacheDisabled        uint64 // clear_route_cache_disabled
	OverrideMessageTimeoutIgnored  uint64 // override_message_timeout_ignored
	OverrideMessageTimeoutAccepted uint64 // override_message_timeout_received (accepted ones)
	// MetadataNamespaceDropped counts dynamic_metadata namespaces a reply
	// carried that are not in receiving_namespaces.untyped (Envoy only logs
	// them at debug level).
	MetadataNamespaceDropped uint64
	LocalReplies             uint64 // emulator: local replies sent (ext_proc errors, immediate responses, 404/413/503/504)
	UpstreamRequests         uint64 // emulator: upstream attempts started (connect failures included)
	UpstreamRetries          uint64 // router upstream_rq_retry: attempts after the first
	UpstreamRetriesExhausted uint64 // emulator: a retriable outcome with no retry left (the router's retry_limit_exceeded)
	// UpstreamContentLengthMismatch counts attempts not sent because the
	// request's content-length header disagrees with the body (Envoy would
	// send the broken request; see ErrContentLengthMismatch).
	UpstreamContentLengthMismatch uint64
	// HeaderMutationsDropped counts header mutations in body replies that
	// Envoy drops because the filter skipped the headers (Envoy only logs
	// them at debug level).
	HeaderMutationsDropped uint64
	// DirectResponses counts router direct_response replies (rq_direct_response).
	DirectResponses uint64
	// UpstreamRetryOverflow counts retries not attempted because the route
	// cluster's max_retries circuit breaker was full (upstream_rq_retry_overflow).
	UpstreamRetryOverflow uint64
	// UpstreamFilter holds the counters of Config.UpstreamFilter.
	UpstreamFilter FilterStats
}

// FilterStats are the ext_proc statistics of one filter instance.
type FilterStats struct {
	StreamsStarted                   uint64 // streams_started
	StreamMsgsSent                   uint64 // stream_msgs_sent
	StreamMsgsReceived               uint64 // stream_msgs_received
	SpuriousMsgsReceived             uint64 // spurious_msgs_received
	StreamsClosed                    uint64 // streams_closed
	StreamsFailed                    uint64 // streams_failed
	FailureModeAllowed               uint64 // failure_mode_allowed
	MessageTimeouts                  uint64 // message_timeouts
	RejectedHeaderMutations          uint64 // rejected_header_mutations
	ClearRouteCacheUpstreamIgnored   uint64 // clear_route_cache_upstream_ignored
	SendImmediateRespUpstreamIgnored uint64 // send_immediate_resp_upstream_ignored (Legacy, Envoy < 1.36): immediate responses and the filter's own error replies, all dropped upstream
	// LocalReplies counts local replies of the upstream filter that ended an
	// attempt (Envoy >= 1.36 honours them, without retry).
	LocalReplies uint64
	// HeaderMutationsDropped: see Stats.HeaderMutationsDropped.
	HeaderMutationsDropped         uint64
	OverrideMessageTimeoutIgnored  uint64 // override_message_timeout_ignored
	OverrideMessageTimeoutAccepted uint64 // override_message_timeout_received
}

// counters holds the live atomic counters behind Stats.
type counters struct {
	streamsStarted                   atomic.Uint64
	streamMsgsSent                   atomic.Uint64
	streamMsgsReceived               atomic.Uint64
	spuriousMsgsReceived             atomic.Uint64
	streamsClosed                    atomic.Uint64
	streamsFailed                    atomic.Uint64
	failureModeAllowed               atomic.Uint64
	messageTimeouts                  atomic.Uint64
	rejectedHeaderMutations          atomic.Uint64
	clearRouteCacheIgnored           atomic.Uint64
	clearRouteCacheDisabled          atomic.Uint64
	clearRouteCacheUpstreamIgnored   atomic.Uint64
	sendImmediateRespUpstreamIgnored atomic.Uint64
	overrideMessageTimeoutIgnored    atomic.Uint64
	overrideMessageTimeoutAccepted   atomic.Uint64
	metadataNamespaceDropped         atomic.Uint64
	localReplies                     atomic.Uint64
	upstreamRequests                 atomic.Uint64
	upstreamRetries                  atomic.Uint64
	upstreamRetriesExhausted         atomic.Uint64
	upstreamContentLengthMismatch    atomic.Uint64
	headerMutationsDropped           atomic.Uint64
	directResponses                  atomic.Uint64
	upstreamRetryOverflow            atomic.Uint64
	upstreamLocalReplies             atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		StreamsStarted:                 c.streamsStarted.Load(),
		StreamMsgsSent:                 c.streamMsgsSent.Load(),
		StreamMsgsReceived:             c.streamMsgsReceived.Load(),
		SpuriousMsgsReceived:           c.spuriousMsgsReceived.Load(),
		StreamsClosed:                  c.streamsClosed.Load(),
		StreamsFailed:                  c.streamsFailed.Load(),
		FailureModeAllowed:             c.failureModeAllowed.Load(),
		MessageTimeouts:                c.messageTimeouts.Load(),
		RejectedHeaderMutations:        c.rejectedHeaderMutations.Load(),
		ClearRouteCacheIgnored:         c.clearRouteCacheIgnored.Load(),
		ClearRouteCacheDisabled:        c.clearRouteCacheDisabled.Load(),
		OverrideMessageTimeoutIgnored:  c.overrideMessageTimeoutIgnored.Load(),
		OverrideMessageTimeoutAccepted: c.overrideMessageTimeoutAccepted.Load(),
		MetadataNamespaceDropped:       c.metadataNamespaceDropped.Load(),
		LocalReplies:                   c.localReplies.Load(),
		UpstreamRequests:               c.upstreamRequests.Load(),
		UpstreamRetries:                c.upstreamRetries.Load(),
		UpstreamRetriesExhausted:       c.upstreamRetriesExhausted.Load(),
		UpstreamContentLengthMismatch:  c.upstreamContentLengthMismatch.Load(),
		HeaderMutationsDropped:         c.headerMutationsDropped.Load(),
		DirectResponses:                c.directResponses.Load(),
		UpstreamRetryOverflow:          c.upstreamRetryOverflow.Load(),
	}
}

func (c *counters) filterSnapshot() FilterStats {
	return FilterStats{
		StreamsStarted:                   c.streamsStarted.Load(),
		StreamMsgsSent:                   c.streamMsgsSent.Load(),
		StreamMsgsReceived:               c.streamMsgsReceived.Load(),
		SpuriousMsgsReceived:             c.spuriousMsgsReceived.Load(),
		StreamsClosed:                    c.streamsClosed.Load(),
		StreamsFailed:                    c.streamsFailed.Load(),
		FailureModeAllowed:               c.failureModeAllowed.Load(),
		MessageTimeouts:                  c.messageTimeouts.Load(),
		RejectedHeaderMutations:          c.rejectedHeaderMutations.Load(),
		ClearRouteCacheUpstreamIgnored:   c.clearRouteCacheUpstreamIgnored.Load(),
		SendImmediateRespUpstreamIgnored: c.sendImmediateRespUpstreamIgnored.Load(),
		OverrideMessageTimeoutIgnored:    c.overrideMessageTimeoutIgnored.Load(),
		OverrideMessageTimeoutAccepted:   c.overrideMessageTimeoutAccepted.Load(),
		LocalReplies:                     c.upstreamLocalReplies.Load(),
		HeaderMutationsDropped:           c.headerMutationsDropped.Load(),
	}
}
