package envoy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"gopkg.in/yaml.v3"
	istionet "istio.io/api/networking/v1alpha3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/tollgate-dev/tollgate/controlplane/translate"
	"github.com/tollgate-dev/tollgate/pkg/config"
	"github.com/tollgate-dev/tollgate/pkg/contract"
)

// deployDoc is one document of a multi-document file, as JSON.
type deployDoc struct {
	Kind string `json:"kind"`
	Name string
	JSON []byte
}

func deployDocs(t *testing.T, file string) []deployDoc {
	t.Helper()
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []deployDoc
	for {
		var v map[string]any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		js, err := json.Marshal(v)
		require.NoError(t, err)
		var d deployDoc
		require.NoError(t, json.Unmarshal(js, &d))
		var meta struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		require.NoError(t, json.Unmarshal(js, &meta))
		d.Name, d.JSON = meta.Metadata.Name, js
		out = append(out, d)
	}
}

// deployOne returns the document of a kind and name.
func deployOne(t *testing.T, docs []deployDoc, kind, name string) []byte {
	t.Helper()
	for _, d := range docs {
		if d.Kind == kind && d.Name == name {
			return d.JSON
		}
	}
	t.Fatalf("no %s %q", kind, name)
	return nil
}

// deployIstioSpec decodes an Istio object's spec.
func deployIstioSpec(t *testing.T, js []byte, spec proto.Message) {
	t.Helper()
	var obj struct {
		Spec json.RawMessage `json:"spec"`
	}
	require.NoError(t, json.Unmarshal(js, &obj))
	require.NoError(t, protojson.Unmarshal(obj.Spec, spec))
}

// The ext_proc filter the Istio EnvoyFilters insert is the translator's
// downstream filter, with Istio's cluster for the tollgate-extproc Service.
func TestDeployIstio(t *testing.T) {
	cfg, err := config.Default()
	require.NoError(t, err)
	for file, context := range map[string]istionet.EnvoyFilter_PatchContext{
		"istio/extproc-gateway.yaml": istionet.EnvoyFilter_GATEWAY,
		"istio/extproc-sidecar.yaml": istionet.EnvoyFilter_SIDECAR_OUTBOUND,
	} {
		t.Run(file, func(t *testing.T) {
			docs := deployDocs(t, file)
			require.Len(t, docs, 1)
			var ef istionet.EnvoyFilter
			deployIstioSpec(t, docs[0].JSON, &ef)
			require.Len(t, ef.GetConfigPatches(), 1)
			cp := ef.GetConfigPatches()[0]
			assert.Equal(t, istionet.EnvoyFilter_HTTP_FILTER, cp.GetApplyTo())
			assert.Equal(t, context, cp.GetMatch().GetContext())
			assert.Equal(t, "envoy.filters.http.router", cp.GetMatch().GetListener().GetFilterChain().GetFilter().GetSubFilter().GetName())
			assert.Equal(t, istionet.EnvoyFilter_Patch_INSERT_BEFORE, cp.GetPatch().GetOperation())

			js, err := protojson.Marshal(cp.GetPatch().GetValue())
			require.NoError(t, err)
			var hf hcmv3.HttpFilter
			require.NoError(t, protojson.Unmarshal(js, &hf))
			var got extprocv3.ExternalProcessor
			require.NoError(t, hf.GetTypedConfig().UnmarshalTo(&got))
			assert.Equal(t, "outbound|50051||tollgate-extproc.tollgate.svc.cluster.local", got.GetGrpcService().GetEnvoyGrpc().GetClusterName())
			assert.False(t, got.GetFailureModeAllow())

			want := translate.DownstreamExtProc(cfg)
			want.GrpcService.GetEnvoyGrpc().ClusterName = got.GetGrpcService().GetEnvoyGrpc().GetClusterName()
			assert.True(t, proto.Equal(want, &got), "the EnvoyFilter's ext_proc differs from translate.DownstreamExtProc:\n got %v\nwant %v", &got, want)
		})
	}

	t.Run("providers", func(t *testing.T) {
		docs := deployDocs(t, "istio/providers.yaml")
		hosts := 0
		for _, d := range docs {
			if d.Kind != "ServiceEntry" {
				continue
			}
			var se istionet.ServiceEntry
			deployIstioSpec(t, d.JSON, &se)
			require.Len(t, se.GetHosts(), 1)
			host := se.GetHosts()[0]
			hosts++
			require.Len(t, se.GetPorts(), 1)
			p := se.GetPorts()[0]
			assert.Equal(t, "HTTP", p.GetProtocol())
			assert.Equal(t, uint32(443), p.GetTargetPort(), "TLS is originated to 443")

			var dr istionet.DestinationRule
			deployIstioSpec(t, deployOne(t, docs, "DestinationRule", d.Name), &dr)
			assert.Equal(t, host, dr.GetHost())
			tp := dr.GetTrafficPolicy()
			require.Len(t, tp.GetPortLevelSettings(), 1)
			pl := tp.GetPortLevelSettings()[0]
			assert.Equal(t, p.GetNumber(), pl.GetPort().GetNumber())
			assert.Equal(t, istionet.ClientTLSSettings_SIMPLE, pl.GetTls().GetMode())
			assert.Equal(t, host, pl.GetTls().GetSni())
			assert.Equal(t, uint32(5), tp.GetOutlierDetection().GetConsecutive_5XxErrors().GetValue())
		}
		assert.Equal(t, 2, hosts)
	})

	t.Run("routes", func(t *testing.T) {
		docs := deployDocs(t, "istio/routes.yaml")
		var vs istionet.VirtualService
		deployIstioSpec(t, deployOne(t, docs, "VirtualService", "tollgate-routes"), &vs)
		require.NotEmpty(t, vs.GetHttp())
		for _, r := range vs.GetHttp() {
			require.Len(t, r.GetMatch(), 1)
			m := r.GetMatch()[0].GetHeaders()["x-tollgate-route"]
			require.NotNil(t, m, "route %s must match x-tollgate-route", r.GetName())
			assert.Equal(t, r.GetName(), m.GetExact())
			assert.Contains(t, cfg.Models, m.GetExact(), "routes name aliases of envoy/tollgate.yaml")
		}
	})
}

func TestDeployGateway(t *testing.T) {
	docs := deployDocs(t, "gateway/extension-policy.yaml")
	var pol struct {
		Spec struct {
			ExtProc []struct {
				BackendRefs []struct {
					Name      string `json:"name"`
					Namespace string `json:"namespace"`
					Port      int    `json:"port"`
				} `json:"backendRefs"`
				ProcessingMode struct {
					AllowModeOverride bool `json:"allowModeOverride"`
					Request           struct {
						Body       string   `json:"body"`
						Attributes []string `json:"attributes"`
					} `json:"request"`
					Response struct {
						Body       string   `json:"body"`
						Attributes []string `json:"attributes"`
					} `json:"response"`
				} `json:"processingMode"`
				FailOpen bool `json:"failOpen"`
				Metadata struct {
					WritableNamespaces []string `json:"writableNamespaces"`
				} `json:"metadata"`
			} `json:"extProc"`
			Wasm []struct {
				Config   json.RawMessage `json:"config"`
				FailOpen bool            `json:"failOpen"`
			} `json:"wasm"`
		} `json:"spec"`
	}
	require.NoError(t, json.Unmarshal(deployOne(t, docs, "EnvoyExtensionPolicy", "tollgate"), &pol))
	require.Len(t, pol.Spec.ExtProc, 1)
	ep := pol.Spec.ExtProc[0]
	assert.Empty(t, ep.ProcessingMode.Request.Attributes, "request headers are sent: no header attributes needed")
	assert.Equal(t, "Buffered", ep.ProcessingMode.Request.Body)
	assert.Equal(t, "Buffered", ep.ProcessingMode.Response.Body)
	// Envoy Gateway's attribute pattern admits response.* but not xds.upstream_host_metadata.
	assert.Equal(t, []string{contract.CodeDetailsAttribute}, ep.ProcessingMode.Response.Attributes,
		"the code details, so that a request Envoy cut by a timer after sending it is billed")
	assert.True(t, ep.ProcessingMode.AllowModeOverride)
	assert.False(t, ep.FailOpen)
	assert.Equal(t, []string{contract.MetadataNamespace}, ep.Metadata.WritableNamespaces)
	require.Len(t, ep.BackendRefs, 1)
	assert.Equal(t, "tollgate-extproc", ep.BackendRefs[0].Name)
	assert.Equal(t, "tollgate", ep.BackendRefs[0].Namespace)
	assert.Equal(t, 50051, ep.BackendRefs[0].Port)
	require.Len(t, pol.Spec.Wasm, 1)
	assert.False(t, pol.Spec.Wasm[0].FailOpen, "the router must fail closed")
	checkRouterAccepts(t, pol.Spec.Wasm[0].Config)

	// Every route rule names an alias and a Backend that exists.
	backends := map[string]bool{}
	for _, d := range deployDocs(t, "gateway/backends.yaml") {
		if d.Kind == "Backend" {
			backends[d.Name] = true
		}
	}
	cfg, err := config.Default()
	require.NoError(t, err)
	var route struct {
		Spec struct {
			Rules []struct {
				Name    string `json:"name"`
				Matches []struct {
					Headers []struct {
						Name  string `json:"name"`
						Value string `json:"value"`
					} `json:"headers"`
				} `json:"matches"`
				BackendRefs []struct {
					Kind string `json:"kind"`
					Name string `json:"name"`
				} `json:"backendRefs"`
			} `json:"rules"`
		} `json:"spec"`
	}
	require.NoError(t, json.Unmarshal(deployOne(t, deployDocs(t, "gateway/httproute.yaml"), "HTTPRoute", "tollgate"), &route))
	aliases := 0
	for _, r := range route.Spec.Rules {
		if len(r.BackendRefs) == 0 {
			continue
		}
		aliases++
		require.Len(t, r.Matches, 1)
		require.Len(t, r.Matches[0].Headers, 1)
		assert.Equal(t, "x-tollgate-route", r.Matches[0].Headers[0].Name)
		assert.Contains(t, cfg.Models, r.Matches[0].Headers[0].Value)
		for _, b := range r.BackendRefs {
			assert.Equal(t, "Backend", b.Kind)
			assert.True(t, backends[b.Name], "rule %s: no Backend %s", r.Name, b.Name)
		}
	}
	assert.NotZero(t, aliases)
}

func deployPort(t *testing.T, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	n, err := strconv.Atoi(p)
	require.NoError(t, err)
	return int32(n)
}

func TestDeployKubernetes(t *testing.T) {
	var cm corev1.ConfigMap
	require.NoError(t, json.Unmarshal(deployOne(t, deployDocs(t, "k8s/configmap.yaml"), "ConfigMap", "tollgate-config"), &cm))
	cfg, err := config.Parse("tollgate.yaml", []byte(cm.Data["tollgate.yaml"]))
	require.NoError(t, err)
	assert.Equal(t, "redis", cfg.Budgets.Ledger.Backend, "replicas must share one ledger")

	for _, tc := range []struct {
		file, name, grpcPort, admin string
		adminAddr                   string
		grpcAddr                    string
	}{
		{file: "k8s/extproc.yaml", name: "tollgate-extproc", grpcPort: "grpc", grpcAddr: cfg.Listen.ExtProc, adminAddr: cfg.Listen.Admin},
		{file: "k8s/xds.yaml", name: "tollgate-xds", grpcPort: "grpc-xds", grpcAddr: cfg.XDS.Listen, adminAddr: "0.0.0.0:9091"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			docs := deployDocs(t, tc.file)
			var d appsv1.Deployment
			require.NoError(t, json.Unmarshal(deployOne(t, docs, "Deployment", tc.name), &d))
			require.Len(t, d.Spec.Template.Spec.Containers, 1)
			c := d.Spec.Template.Spec.Containers[0]
			ports := map[string]int32{}
			for _, p := range c.Ports {
				ports[p.Name] = p.ContainerPort
			}
			assert.Equal(t, deployPort(t, tc.grpcAddr), ports[tc.grpcPort], "container port matches tollgate.yaml")
			assert.Equal(t, deployPort(t, tc.adminAddr), ports["admin"])
			require.NotNil(t, c.ReadinessProbe)
			require.NotNil(t, c.LivenessProbe)
			assert.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
			assert.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
			assert.Equal(t, "admin", c.ReadinessProbe.HTTPGet.Port.String())
			assert.False(t, c.Resources.Requests.Cpu().IsZero(), "cpu request")
			assert.False(t, c.Resources.Requests.Memory().IsZero(), "memory request")
			assert.False(t, c.Resources.Limits.Memory().IsZero(), "memory limit")
			require.NotNil(t, d.Spec.Template.Spec.SecurityContext.RunAsNonRoot)
			assert.True(t, *d.Spec.Template.Spec.SecurityContext.RunAsNonRoot)
			assert.Equal(t, cm.Name, d.Spec.Template.Spec.Volumes[0].ConfigMap.Name)
			assert.Equal(t, []string{"--config", "/etc/tollgate/tollgate.yaml"}, c.Args[1:3])

			var svc corev1.Service
			require.NoError(t, json.Unmarshal(deployOne(t, docs, "Service", tc.name), &svc))
			assert.Equal(t, d.Spec.Selector.MatchLabels, svc.Spec.Selector)
			assert.Equal(t, ports[tc.grpcPort], svc.Spec.Ports[0].Port)
			require.NotNil(t, svc.Spec.Ports[0].AppProtocol)
			assert.Equal(t, "grpc", *svc.Spec.Ports[0].AppProtocol)

			var pdb policyv1.PodDisruptionBudget
			require.NoError(t, json.Unmarshal(deployOne(t, docs, "PodDisruptionBudget", tc.name), &pdb))
			assert.Equal(t, d.Spec.Selector.MatchLabels, pdb.Spec.Selector.MatchLabels)
			assert.Less(t, pdb.Spec.MinAvailable.IntValue(), int(*d.Spec.Replicas), "a PDB that blocks every eviction")
		})
	}
	// The xds config points Envoy at the extproc Service.
	assert.Equal(t, "tollgate-extproc.tollgate.svc.cluster.local:50051", cfg.XDS.ExtProcTarget)

	// The ledger's Redis is shipped: its Service is what the config names,
	// and it selects the Redis pods on their port.
	docs := deployDocs(t, "k8s/redis.yaml")
	var svc corev1.Service
	require.NoError(t, json.Unmarshal(deployOne(t, docs, "Service", "redis"), &svc))
	var d appsv1.Deployment
	require.NoError(t, json.Unmarshal(deployOne(t, docs, "Deployment", "redis"), &d))
	assert.Equal(t, fmt.Sprintf("%s.%s.svc.cluster.local:%d", svc.Name, svc.Namespace, svc.Spec.Ports[0].Port), cfg.Budgets.Ledger.Redis.Addr)
	assert.Equal(t, d.Spec.Selector.MatchLabels, svc.Spec.Selector)
	require.Len(t, d.Spec.Template.Spec.Containers, 1)
	assert.Equal(t, svc.Spec.Ports[0].Port, d.Spec.Template.Spec.Containers[0].Ports[0].ContainerPort)
	require.NotNil(t, d.Spec.Template.Spec.Containers[0].ReadinessProbe)
}

// The Istio and Envoy Gateway buffer limits are what translate.BufferLimit
// gives Envoy for the embedded default config (max_body_bytes + 1 MiB).
func TestDeployBufferLimits(t *testing.T) {
	cfg, err := config.Default()
	require.NoError(t, err)
	want := translate.BufferLimit(cfg)

	t.Run("istio", func(t *testing.T) {
		docs := deployDocs(t, "istio/buffer-limit.yaml")
		require.Len(t, docs, 1)
		var ef istionet.EnvoyFilter
		deployIstioSpec(t, docs[0].JSON, &ef)
		assert.Equal(t, "ingressgateway", ef.GetWorkloadSelector().GetLabels()["istio"])
		require.Len(t, ef.GetConfigPatches(), 1)
		cp := ef.GetConfigPatches()[0]
		assert.Equal(t, istionet.EnvoyFilter_LISTENER, cp.GetApplyTo())
		assert.Equal(t, istionet.EnvoyFilter_GATEWAY, cp.GetMatch().GetContext())
		assert.Equal(t, istionet.EnvoyFilter_Patch_MERGE, cp.GetPatch().GetOperation())
		js, err := protojson.Marshal(cp.GetPatch().GetValue())
		require.NoError(t, err)
		var l listenerv3.Listener
		require.NoError(t, protojson.Unmarshal(js, &l), "the patch is a Listener fragment")
		assert.Equal(t, want, l.GetPerConnectionBufferLimitBytes().GetValue())
	})

	t.Run("gateway", func(t *testing.T) {
		var pol struct {
			Spec struct {
				TargetRefs []struct {
					Kind string `json:"kind"`
					Name string `json:"name"`
				} `json:"targetRefs"`
				Connection struct {
					BufferLimit string `json:"bufferLimit"`
				} `json:"connection"`
			} `json:"spec"`
		}
		require.NoError(t, json.Unmarshal(deployOne(t, deployDocs(t, "gateway/client-traffic-policy.yaml"), "ClientTrafficPolicy", "tollgate-buffer-limit"), &pol))
		require.Len(t, pol.Spec.TargetRefs, 1)
		assert.Equal(t, "Gateway", pol.Spec.TargetRefs[0].Kind)
		assert.Equal(t, "eg", pol.Spec.TargetRefs[0].Name, "the Gateway the EnvoyExtensionPolicy targets")
		q, err := resource.ParseQuantity(pol.Spec.Connection.BufferLimit)
		require.NoError(t, err)
		assert.Equal(t, int64(want), q.Value())
	})
}
