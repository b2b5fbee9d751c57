-- The docker-compose demo: a replication user and a table that an event
-- keeps changing, so the status page has something to show.
CREATE USER 'binlog2kafka'@'%' IDENTIFIED BY 'binlog2kafka';
GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO 'binlog2kafka'@'%';

CREATE TABLE demo.orders (
  id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  customer VARCHAR(40) NOT NULL,
  amount DECIMAL(10,2) NOT NULL,
  created DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
);

SET GLOBAL event_scheduler = ON;
CREATE EVENT demo.new_order ON SCHEDULE EVERY 1 SECOND DO
  INSERT INTO demo.orders (customer, amount)
  VALUES (ELT(1 + FLOOR(RAND() * 3), 'ada', 'grace', 'linus'), ROUND(RAND() * 100, 2));
