"""The seed's DAG (user_automation, @daily: stream the randomuser API for 60 s) rewritten to drive sluice.

sluice does the streaming itself: `sluice ingest users` pulls the API into the topic, and `sluice process users
--drain` waits until the processor has written everything to the table (consumer lag 0), so the task ends when the
data is in Cassandra, not merely in Kafka. Airflow only schedules, retries and keeps history.

Environment of the Airflow workers:
  SLUICE_BIN     the sluice executable (default: sluice on PATH)
  SLUICE_CONFIG  the sluice.yaml both tasks read (default: /opt/sluice/sluice.yaml)
A run's conf may override the ingest bound: {"ingest_args": "--count-per-run 500"} (the default is the seed's --for 60s;
--count N would be a total across runs).
"""
from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator

default_args = {
    "owner": "airscholar",
    "start_date": datetime(2023, 9, 3, 10, 0),
    "retries": 1,
    "retry_delay": timedelta(minutes=1),
}

SLUICE = '"${SLUICE_BIN:-sluice}"'
CONFIG = '"${SLUICE_CONFIG:-/opt/sluice/sluice.yaml}"'
INGEST_ARGS = "{{ dag_run.conf.get('ingest_args', params.ingest_args) if dag_run and dag_run.conf else params.ingest_args }}"

with DAG(
    "user_automation",
    default_args=default_args,
    schedule="@daily",
    catchup=False,
    params={"ingest_args": "--for 60s"},
    tags=["sluice"],
) as dag:
    # sluice exits non-zero on any error (bad config, API or broker down past its retries): BashOperator turns that
    # into a failed try, and Airflow's retries apply.
    streaming_task = BashOperator(
        task_id="stream_data_from_api",
        bash_command=f"{SLUICE} ingest users -c {CONFIG} {INGEST_ARGS}",
    )
    processing_task = BashOperator(
        task_id="wait_for_processor",
        bash_command=f"{SLUICE} process users -c {CONFIG} --drain",
        execution_timeout=timedelta(minutes=30),
    )
    streaming_task >> processing_task
