"""The oracle's side of tests/integration/test_spark_oracle.py: a PySpark Structured Streaming job doing the windowed
aggregation that the test's sluice config declares (same topic, same window, watermark, group key and measures), into
its own Cassandra table. Run by the test with the bench venv's python (bench/spark/install); it stops once the table
has EXPECT rows or after TIMEOUT seconds.

Environment: BOOTSTRAP, TOPIC, KEYSPACE, TABLE, EXPECT, TIMEOUT, CHECKPOINT, JARS (a glob), WINDOW, SLIDE,
LATENESS (Spark interval strings, e.g. "1 minute").
"""
import glob
import os
import sys
import time

from cassandra.cluster import Cluster
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StringType, StructField, StructType

env = os.environ
spark = (SparkSession.builder.appName("oracle-windows").master("local[2]")
         .config("spark.jars", ",".join(sorted(glob.glob(env["JARS"]))))
         .config("spark.cassandra.connection.host", "127.0.0.1")
         .config("spark.sql.session.timeZone", "UTC")
         .config("spark.sql.shuffle.partitions", "2")
         .config("spark.ui.enabled", "false")
         .getOrCreate())
spark.sparkContext.setLogLevel("ERROR")

schema = StructType([StructField("id", StringType()), StructField("country", StringType()),
                     StructField("ts", StringType()), StructField("v", IntegerType())])
events = (spark.readStream.format("kafka")
          .option("kafka.bootstrap.servers", env["BOOTSTRAP"])
          .option("subscribe", env["TOPIC"])
          .option("startingOffsets", "earliest")
          .load()
          .select(F.from_json(F.col("value").cast("string"), schema).alias("e"))
          .select("e.*")
          .withColumn("ts", F.to_timestamp("ts", "yyyy-MM-dd'T'HH:mm:ss.SSSX")))
agg = (events.withWatermark("ts", env["LATENESS"])
       .groupBy(F.window("ts", env["WINDOW"], env["SLIDE"]), F.col("country"))
       .agg(F.count(F.lit(1)).alias("n"), F.sum("v").alias("total"), F.min("v").alias("lo"),
            F.max("v").alias("hi"), F.avg("v").alias("mean"))
       .select("country", F.col("window.start").alias("window_start"), F.col("window.end").alias("window_end"),
               "n", "total", "lo", "hi", "mean"))


def write(df, _batch_id):
    df.write.format("org.apache.spark.sql.cassandra").mode("append") \
        .options(keyspace=env["KEYSPACE"], table=env["TABLE"]).save()


q = (agg.writeStream.outputMode("append").foreachBatch(write)
     .option("checkpointLocation", env["CHECKPOINT"]).trigger(processingTime="1 second").start())
while q.isActive and q.lastProgress is None:  # the first trigger done: the query is up (the bench waits for it)
    time.sleep(0.5)
print("running", flush=True)
session = Cluster(["127.0.0.1"]).connect()
want = int(env["EXPECT"])
deadline = time.time() + float(env.get("TIMEOUT", "300"))
have = -1
while time.time() < deadline and q.isActive:
    have = session.execute(f"SELECT count(*) FROM {env['KEYSPACE']}.{env['TABLE']}").one()[0]
    if have >= want:
        time.sleep(3)  # a batch still writing would add rows: the test then sees more than sluice has
        break
    time.sleep(1)
exc = q.exception()
q.stop()
spark.stop()
if exc:
    print(f"spark query failed: {exc}", file=sys.stderr)
    sys.exit(2)
print(f"spark wrote {have} rows (waited for {want})")
