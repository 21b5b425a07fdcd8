"""Stream topic `orders` from AWS MSK to topic `results`, through kbridge.

Spark speaks plaintext Kafka to kbridge on 127.0.0.1:9092; kbridge carries the TLS to MSK's
port 9094 and verifies the brokers' certificates (chain and host name) against the system
trust store. So the job has no truststore, no keystore and no kafka.ssl.* option at all: see
"Moving a job from direct TLS to kbridge" in docs/deploy.md.

Each order is a JSON object {"order_id", "customer_id", "amount", "currency"}; each result is
the order with amount_cents and is_large added, keyed like the input. Malformed records are
dropped.

Dataproc (kbridge installed on every node by deploy/dataproc/kbridge-init.sh):
    gcloud dataproc jobs submit pyspark examples/pyspark_msk.py --cluster CLUSTER \\
        --region REGION --properties spark.jars.packages=org.apache.spark:spark-sql-kafka-0-10_2.12:3.5.1 \\
        -- --checkpoint gs://BUCKET/checkpoints/orders-to-results
Anywhere else with kbridge running locally:
    spark-submit --packages org.apache.spark:spark-sql-kafka-0-10_2.12:3.5.1 \\
        examples/pyspark_msk.py --checkpoint /tmp/checkpoints/orders-to-results
(Match the package's Spark and Scala versions to your cluster's.)
"""

import argparse
import os

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

ORDER_SCHEMA = T.StructType(
    [
        T.StructField("order_id", T.StringType()),
        T.StructField("customer_id", T.StringType()),
        T.StructField("amount", T.DoubleType()),
        T.StructField("currency", T.StringType()),
    ]
)
LARGE_ORDER = 1000.0


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bootstrap-servers",
                    default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
                    help="kbridge's listener (default 127.0.0.1:9092)")
    ap.add_argument("--input-topic", default="orders")
    ap.add_argument("--output-topic", default="results")
    ap.add_argument("--checkpoint", required=True,
                    help="durable checkpoint directory (gs://, s3a://, hdfs://): where the "
                         "query's offsets and state survive restarts")
    ap.add_argument("--starting-offsets", default="latest", choices=["latest", "earliest"],
                    help="where a query without a checkpoint starts")
    ap.add_argument("--trigger-seconds", type=int, default=10)
    return ap.parse_args(argv)


def kafka_options(bootstrap_servers):
    """The only Kafka connection settings the job needs: kbridge does the TLS."""
    return {
        "kafka.bootstrap.servers": bootstrap_servers,
        "kafka.security.protocol": "PLAINTEXT",
    }


def build_query(spark, args):
    orders = (
        spark.readStream.format("kafka")
        .options(**kafka_options(args.bootstrap_servers))
        .option("subscribe", args.input_topic)
        .option("startingOffsets", args.starting_offsets)
        .load()
    )
    parsed = orders.select(
        F.col("key"),
        F.from_json(F.col("value").cast("string"), ORDER_SCHEMA).alias("o"),
    ).where(F.col("o.order_id").isNotNull() & F.col("o.amount").isNotNull())
    results = parsed.select(
        F.col("key"),
        F.to_json(
            F.struct(
                F.col("o.order_id").alias("order_id"),
                F.col("o.customer_id").alias("customer_id"),
                F.col("o.amount").alias("amount"),
                F.col("o.currency").alias("currency"),
                F.round(F.col("o.amount") * 100).cast("long").alias("amount_cents"),
                (F.col("o.amount") >= LARGE_ORDER).alias("is_large"),
            )
        ).alias("value"),
    )
    return (
        results.writeStream.format("kafka")
        .options(**kafka_options(args.bootstrap_servers))
        .option("topic", args.output_topic)
        .option("checkpointLocation", args.checkpoint)
        .trigger(processingTime="%d seconds" % args.trigger_seconds)
        .queryName("orders-to-results")
        .start()
    )


def main(argv=None):
    args = parse_args(argv)
    spark = SparkSession.builder.appName("orders-to-results-via-kbridge").getOrCreate()
    query = build_query(spark, args)
    query.awaitTermination()


if __name__ == "__main__":
    main()
