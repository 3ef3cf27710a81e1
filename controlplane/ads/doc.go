// Package ads is `tollgate xds`: an aggregated discovery service (state of
// the world and delta) on go-control-plane's snapshot cache, serving the
// resources controlplane/translate builds from tollgate.yaml and rebuilding
// them when the file changes.
//
// Every Envoy that connects gets the same snapshot whatever its node id: the
// cache's NodeHash maps all nodes to one key, so a node that connects before,
// during or after a reload never waits for a per-node SetSnapshot. Snapshot
// versions are content hashes of the resources: an edit that changes nothing
// Envoy sees produces no push. A snapshot is set only after every resource
// passed ValidateAll and the snapshot passed Consistent; a config that fails
// to load or translate keeps the last good snapshot.
package ads
