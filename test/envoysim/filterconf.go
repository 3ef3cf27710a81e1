package envoysim

import (
	"fmt"
	"time"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/proto"
)

// filterConf is one ext_proc filter instance's configuration as the
// emulator uses it: the downstream filter of the HTTP connection manager,
// or the upstream filter run once per attempt in the cluster's upstream
// filter chain (Envoy's FilterConfig with is_upstream).
type filterConf struct {
	filter         *extprocfilterv3.ExternalProcessor
	checker        *mutationChecker
	messageTimeout time.Duration
	maxMsgTimeout  time.Duration
	receiving      map[string]bool // metadata_options.receiving_namespaces.untyped
	stats          *counters
	client         extprocv3.ExternalProcessorClient
	upstream       bool
}

// newFilterConf validates filter (cloned) and derives the settings the
// exchange code reads.
func newFilterConf(filter *extprocfilterv3.ExternalProcessor, upstream bool, stats *counters) (*filterConf, []error) {
	if filter == nil {
		filter = &extprocfilterv3.ExternalProcessor{}
	}
	filter = proto.Clone(filter).(*extprocfilterv3.ExternalProcessor)
	errs := validateFilter(filter)
	if upstream {
		pm := filter.GetProcessingMode()
		if pm.GetRequestBodyMode() == extprocfilterv3.ProcessingMode_STREAMED || pm.GetResponseBodyMode() == extprocfilterv3.ProcessingMode_STREAMED {
			errs = append(errs, fmt.Errorf("upstream filter: STREAMED body mode: %w", ErrUnsupported))
		}
	}
	checker, err := newMutationChecker(filter.GetMutationRules())
	if err != nil {
		errs = append(errs, err)
	}
	fc := &filterConf{
		filter:         filter,
		checker:        checker,
		messageTimeout: DefaultMessageTimeout,
		maxMsgTimeout:  filter.GetMaxMessageTimeout().AsDuration(),
		stats:          stats,
		upstream:       upstream,
	}
	if mt := filter.GetMessageTimeout(); mt != nil {
		fc.messageTimeout = mt.AsDuration()
	}
	if ns := filter.GetMetadataOptions().GetReceivingNamespaces().GetUntyped(); len(ns) > 0 {
		fc.receiving = make(map[string]bool, len(ns))
		for _, n := range ns {
			fc.receiving[n] = true
		}
	}
	return fc, errs
}
