package chronik.streams;

import java.time.Duration;
import java.util.Arrays;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.processor.StateRestoreListener;
import org.apache.kafka.streams.processor.api.FixedKeyProcessor;
import org.apache.kafka.streams.processor.api.FixedKeyProcessorContext;
import org.apache.kafka.streams.processor.api.FixedKeyRecord;
import org.apache.kafka.streams.processor.api.RecordMetadata;

/**
 * Kafka's word count, at least once: lines from the input topic are split
 * into words, grouped by word (through the repartition topic
 * APP-words-repartition) and counted in the store "counts" (changelog
 * APP-counts-changelog, compacted); every new count goes to the output topic.
 *
 * Arguments: bootstrap-servers application-id input-topic output-topic state-dir.
 *
 * It prints one tab-separated line per event on stdout, for the test to read:
 *   STATE old new              a change of the client's state
 *   RESTORED topic p n         n records of a changelog partition restored
 *   REPROCESSED topic p o k v  a record this process has processed before
 *   CLOSED                     after a clean close (on SIGTERM)
 * REPROCESSED is how the test knows what at-least-once may have counted
 * twice: a record is processed again only when its task restarts from the
 * last committed offset (a dirty close), and each such record is reported,
 * once in the sub-topology reading the input (its words) and once in the
 * one reading the repartition topic (its word).
 */
public final class WordCount {
    public static void main(String[] args) throws Exception {
        if (args.length != 5) {
            System.err.println("usage: WordCount bootstrap-servers application-id input-topic output-topic state-dir");
            System.exit(2);
        }
        String bootstrap = args[0], appId = args[1], input = args[2], output = args[3], stateDir = args[4];

        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.AT_LEAST_ONCE);
        // Commit often: what a dirty close re-processes is what came after
        // the last commit.
        props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
        // No record cache: every count is forwarded (and its changelog
        // written) as its record is processed, with that record's offset.
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        props.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 3);
        // Delete what has been consumed from the repartition topic soon
        // after each commit (DeleteRecords), not every 30 s.
        props.put(StreamsConfig.REPARTITION_PURGE_INTERVAL_MS_CONFIG, 500);
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
        // A static member: closing with leaveGroup removes it from the group
        // (through the admin client), so a restarted client is given the
        // tasks at once. A dynamic member would not leave: Streams' consumer
        // does not send LeaveGroup on close, and a restarted client would
        // wait for its session to expire.
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG), appId + "-1");
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), 10000);
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG), 1000);

        StreamsBuilder builder = new StreamsBuilder();
        builder.stream(input, Consumed.with(Serdes.String(), Serdes.String()))
            .processValues(() -> new Seen<String, String>())
            .flatMapValues(line -> Arrays.asList(line.toLowerCase().split("\\W+")))
            .filter((key, word) -> !word.isEmpty())
            .groupBy((key, word) -> word, Grouped.with("words", Serdes.String(), Serdes.String()))
            .count(Materialized.as("counts"))
            .toStream()
            .processValues(() -> new Seen<String, Long>())
            .to(output, Produced.with(Serdes.String(), Serdes.Long()));

        KafkaStreams streams = new KafkaStreams(builder.build(), props);
        streams.setStateListener((now, old) -> say("STATE\t" + old + "\t" + now));
        streams.setGlobalStateRestoreListener(new StateRestoreListener() {
            @Override
            public void onRestoreStart(TopicPartition tp, String store, long start, long end) {}

            @Override
            public void onBatchRestored(TopicPartition tp, String store, long batchEnd, long n) {}

            @Override
            public void onRestoreEnd(TopicPartition tp, String store, long total) {
                say("RESTORED\t" + tp.topic() + "\t" + tp.partition() + "\t" + total);
            }
        });
        // A thread that dies takes the client with it: the test sees the
        // process exit rather than a client quietly running short of threads.
        streams.setUncaughtExceptionHandler(e -> {
            System.err.println("stream thread failed: " + e);
            e.printStackTrace();
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });

        CountDownLatch closed = new CountDownLatch(1);
        AtomicBoolean stopping = new AtomicBoolean();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            stopping.set(true);
            boolean clean = streams.close(new KafkaStreams.CloseOptions().leaveGroup(true).timeout(Duration.ofSeconds(30)));
            say(clean ? "CLOSED" : "CLOSE_TIMED_OUT");
            closed.countDown();
        }));
        streams.start();
        // Wait for the client to stop: by SIGTERM (the hook above) or by a
        // failed thread (state ERROR, then NOT_RUNNING).
        while (closed.getCount() > 0) {
            KafkaStreams.State s = streams.state();
            if (!stopping.get() && (s == KafkaStreams.State.ERROR || s == KafkaStreams.State.NOT_RUNNING)) {
                System.exit(1);
            }
            Thread.sleep(200);
        }
    }

    private static synchronized void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    /** Everything this process processed, as topic/partition/offset. */
    private static final Set<String> processed = ConcurrentHashMap.newKeySet();

    /** Passes records on, reporting any this process has processed before. */
    private static final class Seen<K, V> implements FixedKeyProcessor<K, V, V> {
        private FixedKeyProcessorContext<K, V> context;

        @Override
        public void init(FixedKeyProcessorContext<K, V> context) {
            this.context = context;
        }

        @Override
        public void process(FixedKeyRecord<K, V> record) {
            RecordMetadata m = context.recordMetadata().orElseThrow();
            String where = m.topic() + "\t" + m.partition() + "\t" + m.offset();
            if (!processed.add(where)) {
                say("REPROCESSED\t" + where + "\t" + record.key() + "\t" + record.value());
            }
            context.forward(record);
        }
    }
}
