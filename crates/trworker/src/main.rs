fn main() {
    println!("trworker: under construction");
}
