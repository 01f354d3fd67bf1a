// Module testcluster brings up a single-node Kubernetes built from upstream
// sources on this machine, for the Kubernetes runner's tests. It is its own
// module so that the root module neither builds nor depends on it; the
// Kubernetes binaries themselves come from the nested module in ./kube.
module github.com/integr8scode/integr8scode/deploy/testcluster

go 1.26.0
