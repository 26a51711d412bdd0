"""The seed's loop (its Airflow task stream_data_from_api) with confluent-kafka instead of kafka-python and with no
HTTP: for each raw randomuser record (bytes, as a response body would bring them), json.loads, format_data,
json.dumps, produce to the topic keyed by id. The raw lines are read into memory before the clock starts, so what is
timed is the seed's per-record work plus the producer's. Producer settings
match sluice's defaults (acks=all, idempotence, lz4, linger 5 ms, 64 MiB queue). Prints one JSON line.
Usage: seed_producer.py RAW_JSONL TOPIC [BROKERS]"""
import json
import sys
import time

from confluent_kafka import Producer


def format_data(res):
    # the seed's format_data, field by field (id from login.uuid like sluice's mapping, instead of uuid4())
    data = {}
    location = res['location']
    data['id'] = res['login']['uuid']
    data['first_name'] = res['name']['first']
    data['last_name'] = res['name']['last']
    data['gender'] = res['gender']
    data['address'] = f"{str(location['street']['number'])} {location['street']['name']}, " \
                      f"{location['city']}, {location['state']}, {location['country']}"
    data['post_code'] = str(location['postcode'])
    data['email'] = res['email']
    data['username'] = res['login']['username']
    data['dob'] = res['dob']['date']
    data['registered_date'] = res['registered']['date']
    data['phone'] = res['phone']
    data['picture'] = res['picture']['medium']
    return data


def main():
    path, topic = sys.argv[1], sys.argv[2]
    brokers = sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1:9092"
    with open(path, "rb") as f:
        raw = f.read().splitlines()
    p = Producer({"bootstrap.servers": brokers, "acks": "all", "enable.idempotence": True,
                  "compression.type": "lz4", "linger.ms": 5, "queue.buffering.max.kbytes": 65536})
    failed = []

    def dr(err, _msg):
        if err:
            failed.append(err)
    t0, c0 = time.monotonic(), time.process_time()
    for line in raw:
        data = format_data(json.loads(line))
        value = json.dumps(data).encode("utf-8")
        while True:
            try:
                p.produce(topic, key=data['id'].encode(), value=value, on_delivery=dr)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    left = p.flush(120)
    wall, cpu = time.monotonic() - t0, time.process_time() - c0
    print(json.dumps({"client": "python seed loop (confluent-kafka)", "records": len(raw), "seconds": wall,
                      "cpu_s": cpu, "failed": len(failed) + left}))


if __name__ == "__main__":
    main()
