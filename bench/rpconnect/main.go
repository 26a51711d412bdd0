// A Benthos (Redpanda Connect's engine, MIT-licensed v4.27) binary with only the components the bench needs:
// kafka inputs, the cassandra output, and the pure ones (drop, mappings). This is the documented way to build a
// custom Benthos distribution; bench/rpconnect/install builds it into .cache/bench/bin/rpconnect.
package main

import (
	"context"

	"github.com/benthosdev/benthos/v4/public/service"

	_ "github.com/benthosdev/benthos/v4/public/components/cassandra"
	_ "github.com/benthosdev/benthos/v4/public/components/kafka"
	_ "github.com/benthosdev/benthos/v4/public/components/prometheus"
	_ "github.com/benthosdev/benthos/v4/public/components/pure"
)

func main() {
	service.RunCLI(context.Background())
}
