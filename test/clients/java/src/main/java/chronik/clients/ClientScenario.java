package chronik.clients;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ConsumerGroupListing;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.RebalanceInProgressException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * The Java client's scenario against Chronik: the idempotent producer with
 * acks=all and every compression codec, a consumer group (cooperative-sticky,
 * static members, members joining and leaving), and the AdminClient. Each
 * step checks its own results and the program exits non-zero naming the
 * first that does not hold. It prints "MARK <name>" lines at points where
 * the test may inject a fault (the cluster test kills a partition leader at
 * "MARK produced-half") and "OK <step> ..." lines with figures.
 *
 *   ClientScenario --bootstrap host:port[,..] --prefix name --replication N --brokers N
 */
public final class ClientScenario {
    static final String[] CODECS = {"none", "gzip", "snappy", "lz4", "zstd"};
    static final int PER_CODEC = 2000;
    static final int GROUP_RECORDS = 3000;

    final String bootstrap;
    final String prefix;
    final short replication;
    final int brokers;

    ClientScenario(String bootstrap, String prefix, short replication, int brokers) {
        this.bootstrap = bootstrap;
        this.prefix = prefix;
        this.replication = replication;
        this.brokers = brokers;
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> a = new HashMap<>();
        for (int i = 0; i + 1 < args.length; i += 2) {
            a.put(args[i], args[i + 1]);
        }
        ClientScenario s = new ClientScenario(a.get("--bootstrap"), a.getOrDefault("--prefix", "java"),
                Short.parseShort(a.getOrDefault("--replication", "1")),
                Integer.parseInt(a.getOrDefault("--brokers", "1")));
        try (Admin admin = Admin.create(s.adminProps())) {
            s.produceEveryCodec(admin);
            s.consumerGroup(admin);
            s.adminClient(admin);
        } catch (Failure f) {
            System.out.println("FAIL " + f.getMessage());
            System.out.flush();
            System.exit(1);
        }
        System.out.println("DONE");
        System.out.flush();
        // The clients' threads are closed; exit at once rather than wait for
        // daemon threads of the JVM.
        System.exit(0);
    }

    static final class Failure extends Exception {
        Failure(String msg) {
            super(msg);
        }
    }

    static void check(boolean cond, String fmt, Object... args) throws Failure {
        if (!cond) {
            throw new Failure(String.format(fmt, args));
        }
    }

    static void waitFor(String what, Duration d, BooleanSupplier cond) throws Failure, InterruptedException {
        long deadline = System.nanoTime() + d.toNanos();
        while (!cond.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new Failure("timed out after " + d + " waiting for " + what);
            }
            Thread.sleep(50);
        }
    }

    Properties adminProps() {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "60000");
        return p;
    }

    Properties producerProps(String codec) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "120000");
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        return p;
    }

    Properties consumerProps(String group, String instance) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        if (group != null) {
            p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
            p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG,
                    "org.apache.kafka.clients.consumer.CooperativeStickyAssignor");
            p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
            p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "30000");
            p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "1000");
        }
        if (instance != null) {
            p.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, instance);
        }
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        return p;
    }

    void createTopic(Admin admin, String name, int partitions, Map<String, String> configs)
            throws InterruptedException, ExecutionException {
        admin.createTopics(List.of(new NewTopic(name, partitions, replication).configs(configs))).all().get();
    }

    /** Reads every record of a topic from the start to its end offsets. */
    List<ConsumerRecord<String, String>> readAll(String topic) throws Failure {
        List<ConsumerRecord<String, String>> out = new ArrayList<>();
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(consumerProps(null, null))) {
            List<TopicPartition> tps = new ArrayList<>();
            c.partitionsFor(topic, Duration.ofSeconds(60)).forEach(pi -> tps.add(new TopicPartition(topic, pi.partition())));
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> end = c.endOffsets(tps, Duration.ofSeconds(60));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
            while (true) {
                boolean done = true;
                for (TopicPartition tp : tps) {
                    if (c.position(tp, Duration.ofSeconds(60)) < end.get(tp)) {
                        done = false;
                    }
                }
                if (done) {
                    return out;
                }
                check(System.nanoTime() < deadline, "reading %s: still short of %s after 90 s", topic, end);
                c.poll(Duration.ofMillis(500)).forEach(out::add);
            }
        }
    }

    /**
     * One idempotent producer per codec, acks=all, all at once into one
     * topic; every acknowledged record must be in the log exactly once, at
     * dense offsets.
     */
    void produceEveryCodec(Admin admin) throws Exception {
        String topic = prefix + "-produce";
        createTopic(admin, topic, 3, Map.of());
        Map<String, RecordMetadata> acked = new ConcurrentHashMap<>();
        AtomicInteger failed = new AtomicInteger();
        List<KafkaProducer<String, String>> producers = new ArrayList<>();
        for (String codec : CODECS) {
            producers.add(new KafkaProducer<>(producerProps(codec)));
        }
        long start = System.nanoTime();
        for (int half = 0; half < 2; half++) {
            List<Future<RecordMetadata>> futures = new ArrayList<>();
            for (int c = 0; c < CODECS.length; c++) {
                for (int i = half * PER_CODEC / 2; i < (half + 1) * PER_CODEC / 2; i++) {
                    String v = CODECS[c] + "-" + i;
                    futures.add(producers.get(c).send(new ProducerRecord<>(topic, "k" + i, v), (md, err) -> {
                        if (err != null) {
                            failed.incrementAndGet();
                            System.err.println("produce " + v + ": " + err);
                        } else {
                            acked.put(v, md);
                        }
                    }));
                }
            }
            producers.forEach(KafkaProducer::flush);
            for (Future<RecordMetadata> f : futures) {
                try {
                    f.get();
                } catch (ExecutionException e) {
                    // counted by the callback
                }
            }
            if (half == 0) {
                System.out.println("MARK produced-half");
                System.out.flush();
            }
        }
        producers.forEach(KafkaProducer::close);
        check(failed.get() == 0, "%d idempotent produces failed", failed.get());
        int want = CODECS.length * PER_CODEC;
        check(acked.size() == want, "%d of %d acknowledged", acked.size(), want);

        List<ConsumerRecord<String, String>> log = readAll(topic);
        Map<String, Integer> seen = new HashMap<>();
        Map<Integer, List<Long>> offsets = new TreeMap<>();
        for (ConsumerRecord<String, String> r : log) {
            seen.merge(r.value(), 1, Integer::sum);
            offsets.computeIfAbsent(r.partition(), k -> new ArrayList<>()).add(r.offset());
            RecordMetadata md = acked.get(r.value());
            check(md != null, "record %s in the log was never acknowledged", r.value());
            check(md.partition() == r.partition() && md.offset() == r.offset(),
                    "%s acknowledged at %d/%d but read at %d/%d", r.value(), md.partition(), md.offset(), r.partition(), r.offset());
        }
        for (String v : acked.keySet()) {
            check(seen.getOrDefault(v, 0) == 1, "acknowledged %s read %d times", v, seen.getOrDefault(v, 0));
        }
        for (Map.Entry<Integer, List<Long>> e : offsets.entrySet()) {
            List<Long> offs = e.getValue();
            for (int i = 0; i < offs.size(); i++) {
                check(offs.get(i) == i, "partition %d: offset %d at position %d", e.getKey(), offs.get(i), i);
            }
        }
        // Records of one key keep their producer's order (one partition each).
        System.out.printf("OK produce %d records, %d codecs, idempotent acks=all, %.1f s%n", log.size(), CODECS.length,
                (System.nanoTime() - start) / 1e9);
    }

    /** A member of the consumer group, polling on its own thread. */
    final class Member implements Runnable, ConsumerRebalanceListener {
        final String name;
        final KafkaConsumer<String, String> consumer;
        final Map<String, Integer> consumed;
        final AtomicBoolean stop = new AtomicBoolean();
        final Set<TopicPartition> owned = ConcurrentHashMap.newKeySet();
        final AtomicInteger revokedAll = new AtomicInteger();
        volatile Throwable error;
        volatile int generation = -1;
        final Thread thread;

        Member(String name, String group, String instance, String topic, Map<String, Integer> consumed) {
            this.name = name;
            this.consumed = consumed;
            this.consumer = new KafkaConsumer<>(consumerProps(group, instance));
            consumer.subscribe(List.of(topic), this);
            thread = new Thread(this, name);
            thread.start();
        }

        @Override
        public void run() {
            try {
                while (!stop.get()) {
                    ConsumerRecords<String, String> recs = consumer.poll(Duration.ofMillis(200));
                    for (ConsumerRecord<String, String> r : recs) {
                        consumed.merge(r.value(), 1, Integer::sum);
                    }
                    if (!recs.isEmpty()) {
                        try {
                            consumer.commitSync(Duration.ofSeconds(60));
                        } catch (RebalanceInProgressException e) {
                            // The next poll completes the rebalance: revoked
                            // partitions are committed in the listener, the
                            // ones kept are committed after the next records.
                        }
                    }
                }
            } catch (Throwable e) {
                error = e;
            } finally {
                consumer.close(Duration.ofSeconds(30));
            }
        }

        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> parts) {
            // Cooperative: only the partitions that move are revoked, and
            // what was consumed from them is committed first.
            if (!parts.isEmpty() && parts.containsAll(owned) && owned.size() > 1) {
                revokedAll.incrementAndGet();
            }
            Map<TopicPartition, OffsetAndMetadata> done = new HashMap<>();
            for (TopicPartition tp : parts) {
                done.put(tp, new OffsetAndMetadata(consumer.position(tp)));
            }
            if (!done.isEmpty()) {
                consumer.commitSync(done, Duration.ofSeconds(60));
            }
            owned.removeAll(parts);
        }

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> parts) {
            owned.addAll(parts);
            generation = consumer.groupMetadata().generationId();
        }

        @Override
        public void onPartitionsLost(Collection<TopicPartition> parts) {
            System.err.println(name + " lost " + parts);
            owned.removeAll(parts);
        }

        void close() throws InterruptedException, Failure {
            stop.set(true);
            thread.join(60_000);
            check(!thread.isAlive(), "%s did not close within 60 s", name);
            check(error == null, "%s failed: %s", name, error);
        }
    }

    void consumerGroup(Admin admin) throws Exception {
        String topic = prefix + "-group";
        String group = prefix + "-cg";
        createTopic(admin, topic, 6, Map.of());
        Map<String, Integer> consumed = new ConcurrentHashMap<>();
        AtomicInteger produced = new AtomicInteger();
        AtomicBoolean producing = new AtomicBoolean(true);
        Thread producer = new Thread(() -> {
            try (KafkaProducer<String, String> p = new KafkaProducer<>(producerProps("lz4"))) {
                for (int i = 0; i < GROUP_RECORDS; i++) {
                    p.send(new ProducerRecord<>(topic, "k" + i, "g-" + i)).get();
                    produced.incrementAndGet();
                    if (i % 100 == 99) {
                        Thread.sleep(20); // spread the records over the rebalances
                    }
                }
            } catch (Exception e) {
                System.err.println("group producer: " + e);
            } finally {
                producing.set(false);
            }
        }, "group-producer");
        producer.start();

        Member a = new Member("a", group, "static-a", topic, consumed);
        waitFor("member a to own all 6 partitions", Duration.ofSeconds(60), () -> a.owned.size() == 6);
        waitFor("member a to consume", Duration.ofSeconds(60), () -> consumed.size() >= 200);

        Member b = new Member("b", group, "static-b", topic, consumed);
        waitFor("a and b to share the 6 partitions in one generation", Duration.ofSeconds(60),
                () -> a.owned.size() == 3 && b.owned.size() == 3 && a.generation == b.generation);
        check(a.revokedAll.get() == 0, "cooperative-sticky: a had all its partitions revoked at once");
        Set<TopicPartition> bOwned = new HashSet<>(b.owned);

        // A static member that restarts within its session timeout gets its
        // partitions back without a rebalance of the others.
        int generation = a.generation;
        b.close();
        Member b2 = new Member("b2", group, "static-b", topic, consumed);
        waitFor("restarted b to own its partitions again", Duration.ofSeconds(60), () -> b2.owned.equals(bOwned) && b2.generation >= 0);
        check(b2.generation == generation && a.generation == generation && a.owned.size() == 3,
                "a static member's restart rebalanced the group (generation %d, then a %d, b %d; a owns %s)",
                generation, a.generation, b2.generation, a.owned);

        // A dynamic member joins and leaves: two rebalances.
        Member c = new Member("c", group, null, topic, consumed);
        waitFor("c to get partitions", Duration.ofSeconds(60),
                () -> c.owned.size() == 2 && a.owned.size() == 2 && b2.owned.size() == 2);
        c.close();
        waitFor("a and b to own all 6 again after c left", Duration.ofSeconds(60),
                () -> a.owned.size() + b2.owned.size() == 6 && a.owned.size() == 3);

        producer.join(120_000);
        check(produced.get() == GROUP_RECORDS, "produced %d of %d", produced.get(), GROUP_RECORDS);
        waitFor("every record consumed", Duration.ofSeconds(60), () -> consumed.size() == GROUP_RECORDS);
        // commitSync after each poll and on revocation: nothing twice.
        int twice = 0;
        for (int n : consumed.values()) {
            if (n > 1) {
                twice++;
            }
        }
        check(twice == 0, "%d records consumed more than once", twice);

        // The committed offsets are the log end: lag 0, as the admin sees it.
        waitFor("the group's lag to reach 0", Duration.ofSeconds(30), () -> {
            try {
                return totalLag(admin, group, topic) == 0;
            } catch (Exception e) {
                return false;
            }
        });
        ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
        check(d.groupState() == GroupState.STABLE, "group state %s, want Stable", d.groupState());
        check(d.members().size() == 2, "group has %d members, want 2", d.members().size());
        Set<String> instances = new HashSet<>();
        d.members().forEach(m -> instances.add(m.groupInstanceId().orElse("")));
        check(instances.equals(Set.of("static-a", "static-b")), "members' instance ids %s", instances);
        a.close();
        b2.close();
        System.out.printf("OK group %d records consumed once by members joining and leaving, lag 0%n", consumed.size());
    }

    long totalLag(Admin admin, String group, String topic) throws Exception {
        Map<TopicPartition, OffsetAndMetadata> committed =
                admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
        Map<TopicPartition, OffsetSpec> latest = new HashMap<>();
        for (TopicPartition tp : committed.keySet()) {
            latest.put(tp, OffsetSpec.latest());
        }
        Map<TopicPartition, ListOffsetsResultInfo> ends = admin.listOffsets(latest).all().get();
        long lag = 0;
        int parts = 0;
        for (Map.Entry<TopicPartition, OffsetAndMetadata> e : committed.entrySet()) {
            if (e.getKey().topic().equals(topic)) {
                lag += ends.get(e.getKey()).offset() - e.getValue().offset();
                parts++;
            }
        }
        return parts == 6 ? lag : -1;
    }

    void adminClient(Admin admin) throws Exception {
        DescribeClusterResult cluster = admin.describeCluster();
        int nodes = cluster.nodes().get().size();
        check(nodes == brokers, "describeCluster: %d nodes, want %d", nodes, brokers);
        check(cluster.controller().get() != null, "describeCluster: no controller");
        check(cluster.clusterId().get() != null && !cluster.clusterId().get().isEmpty(), "describeCluster: no cluster id");

        // Create, with a config; describe.
        String topic = prefix + "-admin";
        createTopic(admin, topic, 2, Map.of("retention.ms", "3600000"));
        TopicDescription td = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
        check(td.partitions().size() == 2, "describeTopics: %d partitions", td.partitions().size());
        td.partitions().forEach(p -> {
            if (p.replicas().size() != replication || p.leader() == null) {
                throw new IllegalStateException("describeTopics: partition " + p);
            }
        });
        check(admin.listTopics().names().get().contains(topic), "listTopics lacks %s", topic);

        // Describe and alter configs.
        ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        Config cfg = admin.describeConfigs(List.of(res)).all().get().get(res);
        check("3600000".equals(cfg.get("retention.ms").value()), "retention.ms %s", cfg.get("retention.ms"));
        admin.incrementalAlterConfigs(Map.of(res, List.of(
                new AlterConfigOp(new ConfigEntry("retention.ms", "7200000"), AlterConfigOp.OpType.SET),
                new AlterConfigOp(new ConfigEntry("cleanup.policy", "compact"), AlterConfigOp.OpType.SET)))).all().get();
        cfg = admin.describeConfigs(List.of(res)).all().get().get(res);
        check("7200000".equals(cfg.get("retention.ms").value()), "after alter: retention.ms %s", cfg.get("retention.ms"));
        check("compact".equals(cfg.get("cleanup.policy").value()), "after alter: cleanup.policy %s", cfg.get("cleanup.policy"));
        admin.incrementalAlterConfigs(Map.of(res, List.of(
                new AlterConfigOp(new ConfigEntry("cleanup.policy", ""), AlterConfigOp.OpType.DELETE)))).all().get();
        cfg = admin.describeConfigs(List.of(res)).all().get().get(res);
        check("delete".equals(cfg.get("cleanup.policy").value()), "after delete: cleanup.policy %s", cfg.get("cleanup.policy"));
        ConfigResource brokerRes = new ConfigResource(ConfigResource.Type.BROKER,
                String.valueOf(cluster.nodes().get().iterator().next().id()));
        check(!admin.describeConfigs(List.of(brokerRes)).all().get().get(brokerRes).entries().isEmpty(),
                "describeConfigs of a broker: no entries");

        // Records with timestamps for list offsets; partition 0 only.
        long base = System.currentTimeMillis() - 60_000;
        long[] stamps = {base, base + 5000, base + 30000, base + 10000, base + 20000};
        try (KafkaProducer<String, String> p = new KafkaProducer<>(producerProps("none"))) {
            for (int rep = 0; rep < 4; rep++) {
                for (int i = 0; i < stamps.length; i++) {
                    p.send(new ProducerRecord<>(topic, 0, stamps[i] + rep, "k", "ts-" + rep + "-" + i)).get();
                }
            }
        }
        TopicPartition tp0 = new TopicPartition(topic, 0);
        check(offset(admin, tp0, OffsetSpec.earliest()) == 0, "earliest offset");
        check(offset(admin, tp0, OffsetSpec.latest()) == 20, "latest offset");
        ListOffsetsResultInfo max = admin.listOffsets(Map.of(tp0, OffsetSpec.maxTimestamp())).all().get().get(tp0);
        check(max.offset() == 17 && max.timestamp() == base + 30003,
                "max timestamp: offset %d ts %d, want 17 at %d", max.offset(), max.timestamp(), base + 30003);
        long byTime = offset(admin, tp0, OffsetSpec.forTimestamp(base + 10001));
        check(byTime == 2, "offset for timestamp: %d, want 2 (the first at or after it)", byTime);

        // Delete records, then the log start moves.
        long low = admin.deleteRecords(Map.of(tp0, RecordsToDelete.beforeOffset(12))).lowWatermarks().get(tp0).get().lowWatermark();
        check(low == 12, "deleteRecords: low watermark %d, want 12", low);
        check(offset(admin, tp0, OffsetSpec.earliest()) == 12, "earliest after deleteRecords: %d",
                offset(admin, tp0, OffsetSpec.earliest()));

        // Groups as the admin sees them.
        String group = prefix + "-cg";
        Collection<ConsumerGroupListing> groups = admin.listConsumerGroups().all().get();
        check(groups.stream().anyMatch(g -> g.groupId().equals(group)), "listConsumerGroups lacks %s: %s", group, groups);
        ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
        // Closed static members do not leave: they stay until their session
        // times out, so that a restart finds its partitions.
        check(d.groupState() == GroupState.STABLE && d.members().size() == 2,
                "group of closed static members: %s with %d members, want Stable with 2", d.groupState(), d.members().size());
        check(totalLag(admin, group, prefix + "-group") == 0, "the group's lag is not 0 after its members left");

        // Delete the topic.
        admin.deleteTopics(List.of(topic)).all().get();
        waitFor("the deleted topic to leave the topic list", Duration.ofSeconds(30), () -> {
            try {
                return !admin.listTopics().names().get().contains(topic);
            } catch (Exception e) {
                return false;
            }
        });
        System.out.println("OK admin");
    }

    static long offset(Admin admin, TopicPartition tp, OffsetSpec spec) throws Exception {
        return admin.listOffsets(Map.of(tp, spec)).all().get().get(tp).offset();
    }
}
