"""The seed's Spark Structured Streaming job (spark_stream.py), rewritten for the benchmark.

Kept as the seed wrote it: a SparkSession with the Kafka and Cassandra connectors, readStream from Kafka
(subscribe, startingOffsets=earliest), `CAST(value AS STRING)`, from_json with the seed's all-string schema,
select("data.*"), and writeStream in the `org.apache.spark.sql.cassandra` format with a checkpoint and the default
micro-batch trigger, into spark_streams.created_users.

Changed only where the seed cannot run at all:
- the jars: the seed asked spark.jars.packages for _2.13 artifacts on a Scala 2.12 Spark (it fails to load); here
  bench/spark/pom.xml resolves _2.12 ones from Maven Central and they come in through spark.jars;
- the keyspace/table creation through cassandra-driver is left out: the harness creates the table (the same one
  sluice writes: id uuid primary key and the 11 text columns, dob included);
- the schema gains `dob`, which the seed's producer sends (format_data) and the table has; without it the column
  stays empty and the rows differ from the other contenders';
- `id` is a string in the topic and a uuid in the table: the connector converts a UUID-shaped string itself.
Added for measuring: the stream stops once N rows went through (a StreamingQueryListener counts numInputRows), and
SINK=noop swaps the Cassandra sink for Spark's discarding `noop` format. Everything is set by environment variables
(see the top of main()); the defaults are the seed's.
"""
import glob
import json
import logging
import os
import sys
import threading
import time

from pyspark.sql import SparkSession
from pyspark.sql.functions import col, from_json
from pyspark.sql.streaming import StreamingQueryListener
from pyspark.sql.types import StructField, StructType, StringType


def create_spark_connection(jars, cassandra_host):
    s_conn = None
    try:
        s_conn = (SparkSession.builder
                  .appName('SparkDataStreaming')
                  .master(os.environ.get('SPARK_MASTER', 'local[*]'))
                  .config('spark.jars', ','.join(jars))
                  .config('spark.cassandra.connection.host', cassandra_host)
                  .config('spark.ui.enabled', 'false')
                  .config('spark.ui.showConsoleProgress', 'false')
                  .getOrCreate())
        s_conn.sparkContext.setLogLevel("ERROR")
        logging.info("Spark connection created successfully!")
    except Exception as e:
        logging.error(f"Couldn't create the spark session due to exception {e}")
    return s_conn


def connect_to_kafka(spark_conn, bootstrap, topic):
    spark_df = None
    try:
        spark_df = (spark_conn.readStream
                    .format('kafka')
                    .option('kafka.bootstrap.servers', bootstrap)
                    .option('subscribe', topic)
                    .option('startingOffsets', 'earliest')
                    .load())
        logging.info("kafka dataframe created successfully")
    except Exception as e:
        logging.warning(f"kafka dataframe could not be created because: {e}")
    return spark_df


def create_selection_df_from_kafka(spark_df):
    schema = StructType([
        StructField("id", StringType(), False),
        StructField("first_name", StringType(), False),
        StructField("last_name", StringType(), False),
        StructField("gender", StringType(), False),
        StructField("address", StringType(), False),
        StructField("post_code", StringType(), False),
        StructField("email", StringType(), False),
        StructField("username", StringType(), False),
        StructField("dob", StringType(), False),           # not in the seed's schema; see the docstring
        StructField("registered_date", StringType(), False),
        StructField("phone", StringType(), False),
        StructField("picture", StringType(), False)
    ])
    sel = spark_df.selectExpr("CAST(value AS STRING)") \
        .select(from_json(col('value'), schema).alias('data')).select("data.*")
    return sel


class Progress(StreamingQueryListener):
    """Counts the rows the query processed; prints one JSON line per micro-batch for the harness."""

    def __init__(self, want):
        self.want, self.rows, self.done = want, 0, threading.Event()

    def onQueryStarted(self, event):
        print(json.dumps({"event": "started", "t": time.time()}), flush=True)

    def onQueryProgress(self, event):
        p = event.progress
        self.rows += p.numInputRows
        print(json.dumps({"event": "progress", "t": time.time(), "batch": p.batchId, "rows": p.numInputRows,
                          "total": self.rows, "ms": p.durationMs.get("triggerExecution", 0)}), flush=True)
        if self.want and self.rows >= self.want:
            self.done.set()

    def onQueryIdle(self, event):
        pass

    def onQueryTerminated(self, event):
        self.done.set()


def main():
    bootstrap = os.environ.get('KAFKA_BOOTSTRAP', 'localhost:9092')
    topic = os.environ.get('TOPIC', 'users_created')
    cassandra_host = os.environ.get('CASSANDRA_HOST', 'localhost')
    keyspace = os.environ.get('KEYSPACE', 'spark_streams')
    table = os.environ.get('TABLE', 'created_users')
    checkpoint = os.environ.get('CHECKPOINT', '/tmp/checkpoint')
    sink = os.environ.get('SINK', 'cassandra')
    want = int(os.environ.get('N', '0'))          # stop after this many rows (0: run until killed)
    jars = sorted(glob.glob(os.path.join(os.environ['SPARK_JARS_DIR'], '*.jar'))) if 'SPARK_JARS_DIR' in os.environ else []

    spark_conn = create_spark_connection(jars, cassandra_host)
    if spark_conn is None:
        sys.exit(1)
    listener = Progress(want)
    spark_conn.streams.addListener(listener)

    spark_df = connect_to_kafka(spark_conn, bootstrap, topic)
    selection_df = create_selection_df_from_kafka(spark_df)

    logging.info("Streaming is being started...")
    if sink == 'noop':
        writer = selection_df.writeStream.format("noop")
    else:
        writer = (selection_df.writeStream.format("org.apache.spark.sql.cassandra")
                  .option('keyspace', keyspace)
                  .option('table', table))
    streaming_query = writer.option('checkpointLocation', checkpoint).start()

    if want:
        listener.done.wait()
        streaming_query.stop()
    else:
        streaming_query.awaitTermination()
    print(json.dumps({"event": "stopped", "t": time.time(), "total": listener.rows}), flush=True)
    spark_conn.stop()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
